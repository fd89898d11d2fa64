"""Audio-visual event localisation on AVE-layout features: segment accuracy, full or weak supervision."""

from convforge.tasks.av_event.task import AVEventSettings, AVEventTask

__all__ = ["AVEventSettings", "AVEventTask"]
