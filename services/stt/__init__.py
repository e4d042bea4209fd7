"""Speech-to-text service: faster-whisper turns utterances into partial and final transcripts."""
