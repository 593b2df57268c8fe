"""The Faust agents: classify → detect → escalate → deliver, one module each."""
