"""The stages, one package each, in flow order: classify → detect → aggregate → escalate →
deliver, and report. In each, ``agent.py`` runs the stage on Faust (installed only by
``streams.wiring``); the logic beside it is plain Python, tested without a broker."""
