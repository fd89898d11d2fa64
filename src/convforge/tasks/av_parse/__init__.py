"""Weakly supervised audio-visual video parsing on LLP-layout features, scored as the standard evaluation does."""

from convforge.tasks.av_parse.task import AVParseSettings, AVParseTask

__all__ = ["AVParseSettings", "AVParseTask"]
