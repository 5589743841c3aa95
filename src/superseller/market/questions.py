"""Job `generate_questions`: the seller's received questions, grouped per listing, with a
draft answer and a suggested line for the listing's description per recurring group.

Questions come from `GET /questions/search?seller_id=…` (paged). A question goes to a known
topic by its words (frete, estoque, garantia, nota fiscal); the rest are grouped by title-
embedding similarity (>= GROUP_SIMILARITY). A group of >= RECURRING questions gets drafts.
Drafts are built from the listing's own data (templates); with OPENAI_API_KEY set, the model
may reword them, and its text is kept only if every number in it is a number of the
template (scoring.wording.faithful). Drafts are shown to the seller; nothing is ever posted.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from sqlalchemy import Engine, delete, select

from superseller.config import Settings
from superseller.db.schema import buyer_questions, listings, question_drafts
from superseller.jobs.clock import Clock, SystemClock
from superseller.market.embeddings import default_embedder, dot, fold
from superseller.market.harvest import insert_ignore
from superseller.scoring.wording import ModelUnavailable, ask_model, faithful

log = logging.getLogger("superseller.market.questions")
PAGE = 50
MAX_QUESTIONS = 2000
RECURRING = 2
GROUP_SIMILARITY = 0.6
TOPICS = {
    "frete": ("frete", "entrega", "envio", "cep", "prazo", "chega"),
    "estoque": ("estoque", "disponivel", "pronta entrega", "tem ainda", "ainda tem"),
    "garantia": ("garantia", "defeito", "troca"),
    "nota": ("nota fiscal", "nf", "nota"),
}
SYSTEM = (
    "Você reescreve, em português do Brasil, um rascunho de resposta a compradores do "
    "Mercado Livre e uma linha para a descrição do anúncio. Responda com duas linhas: a "
    "resposta e a linha da descrição. Use apenas os fatos dados; não invente números."
)


def topic_of(text: str) -> str | None:
    t = fold(text)
    for topic, words in TOPICS.items():
        if any(re.search(rf"\b{re.escape(w)}\b", t) for w in words):
            return topic
    return None


def template(topic: str, listing) -> tuple[str, str]:
    """(answer, description line) from the listing's own data only."""
    title = listing.title
    if topic == "estoque":
        n = listing.available_quantity
        if n:
            return (
                f"Olá! Sim, temos {n} unidades de {title} disponíveis para pronta entrega.",
                "Pronta entrega: enviamos assim que o pagamento é aprovado.",
            )
        return (
            f"Olá! No momento {title} está sem estoque; avisaremos assim que voltar.",
            "Consulte a disponibilidade antes de comprar.",
        )
    if topic == "frete":
        return (
            "Olá! O valor e o prazo do frete aparecem no anúncio ao informar o seu CEP.",
            "Frete e prazo: informe o seu CEP no anúncio para calcular.",
        )
    if topic == "garantia":
        return (
            "Olá! As condições de garantia estão descritas no anúncio; "
            "[confirme aqui o prazo de garantia].",
            "Garantia: [informe o prazo e como acionar].",
        )
    if topic == "nota":
        return (
            "Olá! [Confirme aqui se emite nota fiscal em todas as vendas.]",
            "Nota fiscal: [informe se acompanha o produto].",
        )
    return (
        f"Olá! Obrigado pela pergunta sobre {title}. [Responda aqui.]",
        "[Acrescente à descrição a informação que os compradores pedem.]",
    )


def group(texts: list[tuple[int, str]]) -> dict[str, list[int]]:
    """question ids per topic; unknown topics grouped by embedding similarity."""
    groups: dict[str, list[int]] = {}
    loose: list[tuple[int, list[float]]] = []
    embedder = default_embedder()
    for qid, text in texts:
        topic = topic_of(text)
        if topic:
            groups.setdefault(topic, []).append(qid)
        else:
            loose.append((qid, embedder.embed(text)))
    centers: list[tuple[str, list[float]]] = []
    for qid, vec in loose:
        for name, center in centers:
            if dot(vec, center) >= GROUP_SIMILARITY:
                groups[name].append(qid)
                break
        else:
            name = f"outro-{len(centers) + 1}"
            centers.append((name, vec))
            groups[name] = [qid]
    return groups


def reword(settings: Settings, answer: str, line: str) -> tuple[str, str, str]:
    """(answer, line, wording): the model's text if faithful, else the template."""
    key = settings.openai_api_key
    if key is None or not key.get_secret_value():
        return answer, line, "template"
    facts = f"{answer}\n{line}"
    try:
        worded = ask_model(settings, SYSTEM, facts)
    except ModelUnavailable as exc:
        log.warning("question wording unavailable (%s); using the template", exc)
        return answer, line, "template"
    lines = [x.strip() for x in worded.splitlines() if x.strip()]
    if len(lines) != 2 or not faithful(facts, worded):
        log.warning("question wording rejected: it changed the shape or added figures")
        return answer, line, "template"
    return lines[0], lines[1], settings.openai_model


async def fetch(client, seller_id: int) -> list[dict]:
    out: list[dict] = []
    offset = 0
    while offset < MAX_QUESTIONS:
        page = await client.get(
            "/questions/search",
            {"seller_id": seller_id, "api_version": 4, "offset": offset, "limit": PAGE},
        )
        batch = page.get("questions") or []
        out.extend(batch)
        offset += len(batch)
        if not batch or offset >= int(page.get("total", 0)):
            break
    return out


def save_questions(engine: Engine, tenant_id: str, found: list[dict], clock: Clock) -> int:
    now = clock.now()
    with engine.connect() as conn:
        ids = dict(
            conn.execute(
                select(listings.c.external_id, listings.c.id).where(
                    listings.c.tenant_id == tenant_id
                )
            ).all()
        )
    rows = [
        dict(
            id=int(q["id"]),
            tenant_id=tenant_id,
            item_id=str(q["item_id"]),
            listing_id=ids.get(str(q["item_id"])),
            text=str(q.get("text") or "")[:2000],
            status=str(q.get("status") or "UNKNOWN")[:32],
            date_created=None,
            fetched_at=now,
        )
        for q in found
        if q.get("id") and q.get("item_id") and q.get("text")
    ]
    new = 0
    for i in range(0, len(rows), 500):
        new += insert_ignore(engine, buyer_questions, rows[i : i + 500], ["id"])
    return new


def build_drafts(
    engine: Engine, tenant_id: str, settings: Settings, clock: Clock | None = None
) -> dict[str, Any]:
    now = (clock or SystemClock()).now()
    bq = buyer_questions.c
    with engine.connect() as conn:
        qs = conn.execute(
            select(bq.id, bq.listing_id, bq.text)
            .where(bq.tenant_id == tenant_id, bq.listing_id.is_not(None))
            .order_by(bq.listing_id, bq.id)
        ).all()
        own = {
            r.id: r for r in conn.execute(select(listings).where(listings.c.tenant_id == tenant_id))
        }
    per_listing: dict[int, list[tuple[int, str]]] = {}
    for q in qs:
        per_listing.setdefault(q.listing_id, []).append((q.id, q.text))
    text_of = {q.id: q.text for q in qs}
    made = 0
    with engine.begin() as conn:
        conn.execute(delete(question_drafts).where(question_drafts.c.tenant_id == tenant_id))
        for lid, texts in per_listing.items():
            for topic, ids in group(texts).items():
                if len(ids) < RECURRING or lid not in own:
                    continue
                answer, line = template(topic.split("-")[0], own[lid])
                answer, line, wording = reword(settings, answer, line)
                conn.execute(
                    question_drafts.insert().values(
                        tenant_id=tenant_id,
                        listing_id=lid,
                        topic=topic,
                        question_ids=ids,
                        sample=text_of[ids[0]],
                        answer=answer,
                        description_line=line,
                        wording=wording,
                        updated_at=now,
                    )
                )
                made += 1
    return {"questions": len(qs), "drafts": made}


def drafts(engine: Engine, tenant_id: str, listing_id: int) -> list[dict[str, Any]]:
    d = question_drafts.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(question_drafts)
            .where(d.tenant_id == tenant_id, d.listing_id == listing_id)
            .order_by(d.topic)
        ).all()
    return [
        {
            "topic": r.topic,
            "questions": len(r.question_ids),
            "sample": r.sample,
            "answer": r.answer,
            "descriptionLine": r.description_line,
            "wording": r.wording,
            "posted": False,
        }
        for r in rows
    ]


def drafts_by_listing(engine: Engine, tenant_id: str) -> dict[int, list[dict[str, Any]]]:
    d = question_drafts.c
    out: dict[int, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for r in conn.execute(
            select(question_drafts).where(d.tenant_id == tenant_id).order_by(d.listing_id, d.topic)
        ):
            out.setdefault(r.listing_id, []).append(
                {"topic": r.topic, "questions": len(r.question_ids), "sample": r.sample,
                 "answer": r.answer, "descriptionLine": r.description_line}
            )  # fmt: skip
    return out
