"""While a sync's attempt has failed and the next waits (Mercado Livre down for a while),
the seller's progress line says so, with the attempt, instead of going back to "buscando
seus dados" as if the refresh had started over; a later attempt says which one it is."""

from superseller.mercadolivre.progress import RETRYING, STEPS, chain_status


def _sync(status: str, attempts: int, **more) -> dict:
    return {"id": 1, "status": status, "attempts": attempts, "max_attempts": 3, **more}


def _text(engine, sync: dict) -> str:
    return chain_status(engine, lambda _: {"status": "pending"}, sync, True)["text"]


def test_a_failed_attempt_waiting_for_the_next_says_so(engine):
    waiting = _sync("pending", 1, last_error="MLError: Mercado Livre 500")
    assert _text(engine, waiting) == (
        f"Etapa 1 de 3: {STEPS['sync']} · {RETRYING.format(n=1, of=3)}"
    )
    assert "a tentativa 1 de 3 não foi concluída" in _text(engine, waiting)


def test_a_later_attempt_says_which_it_is_and_the_first_says_nothing(engine):
    assert _text(engine, _sync("running", 2)) == (
        f"Etapa 1 de 3: {STEPS['sync']} · tentativa 2 de 3"
    )
    assert _text(engine, _sync("running", 1)) == f"Etapa 1 de 3: {STEPS['sync']}"
    assert _text(engine, _sync("pending", 0)) == f"Etapa 1 de 3: {STEPS['sync']}"  # queued
