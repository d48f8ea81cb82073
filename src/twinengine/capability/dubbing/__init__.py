"""Video dubbing: transcribe, translate, voice-matched speech, timing fit, mux, publish."""

__all__: list[str] = []
