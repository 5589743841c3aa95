"""MediaVerdict: what is known about a listing's clips ("Clip (vídeo)") and pictures.

`has_clips` is tri-state: True, False, or None (unknown: Mercado Livre documents no
clips API for Brazilian listings). A manual override wins. Unknown is shown as
"não verificado" and never yields a sentence or an action that asserts a missing clip.
"""

from __future__ import annotations

from dataclasses import dataclass

GALLERY_FULL = 8  # "galeria robusta"
GALLERY_ENOUGH = 6  # "galeria suficiente"


@dataclass(frozen=True)
class MediaVerdict:
    clip_status: str  # "has_clip" | "no_clip" | "unknown"
    clip_source: str  # "override" | "sync" | "unknown"
    pictures: int | None

    @property
    def clip_label(self) -> str:
        return {"has_clip": "com clip", "no_clip": "sem clip", "unknown": "não verificado"}[
            self.clip_status
        ]

    @property
    def clip_phrase(self) -> str:
        return {
            "has_clip": "clip publicado",
            "no_clip": "sem clip",
            "unknown": "clip não verificado",
        }[self.clip_status]

    @property
    def can_affirm_no_clip(self) -> bool:
        return self.clip_status == "no_clip"

    @property
    def gallery_label(self) -> str:
        if self.pictures is None:
            return "não verificado"
        if self.pictures >= GALLERY_FULL:
            return "galeria robusta"
        if self.pictures >= GALLERY_ENOUGH:
            return "galeria suficiente"
        return "galeria a ampliar"


def media_verdict(
    has_clips: bool | None, override: bool | None, pictures: int | None
) -> MediaVerdict:
    value, source = (
        (override, "override")
        if override is not None
        else (has_clips, "sync" if has_clips is not None else "unknown")
    )
    status = "unknown" if value is None else "has_clip" if value else "no_clip"
    return MediaVerdict(status, source, pictures)
