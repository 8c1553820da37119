"""Music question answering over the library (facts, audio, content, scores, concepts)."""

from assistant.qa.engine import QA_INTENTS, QAContext, QAEngine

__all__ = ["QA_INTENTS", "QAContext", "QAEngine"]
