"""Serving: a FastAPI app under uvicorn in a worker process (DESIGN §5)."""
