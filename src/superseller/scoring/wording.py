"""Optional wording of a score's explanation by an OpenAI-compatible model.

The computed sentences are the facts; the model may only rephrase them. Its text
is used only if every number in it is one of the numbers of the facts (no invented
figures); otherwise, on a time-out, an error, or with no `OPENAI_API_KEY`, the
deterministic text stands. Good answers are cached by the fingerprint of the
facts and the model, so a listing whose facts did not change costs no call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re

import httpx
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from superseller.config import Settings
from superseller.db.schema import score_texts
from superseller.jobs.clock import Clock, SystemClock

log = logging.getLogger("superseller.scoring.wording")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
SYSTEM = (
    "Você reescreve, em português do Brasil, explicações da nota de um anúncio do "
    "Mercado Livre para o vendedor, num parágrafo curto e claro. Use apenas os fatos "
    "e números dados; não invente números, não acrescente fatos e nunca diga que o "
    "anúncio não tem clip quando o clip está 'não verificado'."
)


def deterministic_text(breakdown: dict) -> str:
    return " ".join(d["explanation"] for d in breakdown["dimensions"])


def _numbers(text: str) -> set[str]:
    return {n.rstrip(".,") for n in NUMBER.findall(text)}


def fingerprint(model: str, text: str) -> str:
    return hashlib.sha256(json.dumps([model, text]).encode()).hexdigest()


class ModelUnavailable(Exception):
    """The model did not answer usefully (network, status, time-out, body shape)."""


# The errors a model call can end in, turned into ModelUnavailable by ask_model.
_MODEL_ERRORS = (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError)


def ask_model(settings: Settings, system: str, facts: str) -> str:
    """The model's wording of `facts` (an OpenAI-compatible chat completion); the one place
    the product calls a model. Raises ModelUnavailable (with the cause's class) on failure."""
    key = settings.openai_api_key
    try:
        r = httpx.post(
            f"{settings.openai_base_url.rstrip('/')}/chat/completions",
            headers={"Authorization": f"Bearer {key.get_secret_value() if key else ''}"},
            json={
                "model": settings.openai_model,
                "temperature": 0.2,
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": facts},
                ],
            },
            timeout=settings.openai_timeout_s,
        )
        r.raise_for_status()
        return r.json()["choices"][0]["message"]["content"].strip()
    except _MODEL_ERRORS as exc:
        raise ModelUnavailable(type(exc).__name__) from exc


def faithful(facts: str, worded: str) -> bool:
    """Every number the model wrote is a number of the facts."""
    return _numbers(worded) <= _numbers(facts)


def explanation(
    engine: Engine, settings: Settings, breakdown: dict, clock: Clock | None = None
) -> dict:
    """{"text", "source": "model" | "cache" | "deterministic"}."""
    facts = deterministic_text(breakdown)
    key = settings.openai_api_key
    if key is None or not key.get_secret_value():
        return {"text": facts, "source": "deterministic"}
    fp = fingerprint(settings.openai_model, facts)
    with engine.connect() as conn:
        cached = conn.execute(
            select(score_texts.c.text).where(score_texts.c.fingerprint == fp)
        ).scalar()
    if cached is not None:
        return {"text": cached, "source": "cache"}
    try:
        worded = ask_model(settings, SYSTEM, facts)
    except ModelUnavailable as exc:
        log.warning("score wording unavailable (%s); using the computed text", exc)
        return {"text": facts, "source": "deterministic"}
    if not worded or not faithful(facts, worded):
        log.warning("score wording rejected: it changed or added figures")
        return {"text": facts, "source": "deterministic"}
    try:
        with engine.begin() as conn:
            conn.execute(
                score_texts.insert().values(
                    fingerprint=fp,
                    model=settings.openai_model,
                    text=worded,
                    created_at=(clock or SystemClock()).now(),
                )
            )
    except IntegrityError:
        pass  # another request cached the same facts first
    return {"text": worded, "source": "model"}
