"""Audio-visual video parsing (LLP): what is heard, what is seen, and when, learnt from video-level labels."""
