"""What a worker runs on: the Faust app and its patches (``faust``), the pipeline every agent is
installed into, whole-topic views, holes, stopping, dead letters, metrics, logs, the embedded
broker and the source connectors' runner.
"""
