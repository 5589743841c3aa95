"""Settings from the environment and `.env` (pydantic-settings).

Every knob has a default that works on a fresh machine: the database is an
embedded SQLite file in a local data directory.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    return Path.cwd() / ".superseller"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""
    timezone: str = "America/Sao_Paulo"

    # Job engine
    job_heartbeat_s: float = 5.0
    job_rescue_after_s: float = 30.0
    job_poll_s: float = 1.0
    job_sqlite_poll_s: float = 0.2
    job_retry_base_s: float = 10.0
    job_retry_cap_s: float = 3600.0
    job_shutdown_grace_s: float = 30.0
    job_retention_days: int = 30
    job_log_retention_days: int = 60

    internal_jobs_key: SecretStr | None = None
    internal_jobs_key_secret_id: str = ""  # AWS Secrets Manager id: the key is read from there
    internal_jobs_key_cache_s: float = 300.0
    internal_jobs_key_grace_s: float = 3600.0  # the previous key stays valid after rotation

    # Mercado Livre
    ml_api_url: str = "https://api.mercadolibre.com"
    ml_auth_url: str = "https://auth.mercadolivre.com.br/authorization"
    ml_client_id: str = ""
    ml_client_secret: SecretStr = SecretStr("")
    # Where Mercado Livre sends the seller back: by default this service's own callback on
    # `serve`'s default address (what the sandbox needs); a real app sets the exact URI it
    # registered with Mercado Livre.
    ml_redirect_uri: str = "http://127.0.0.1:8000/api/v1/mercadolivre/callback"
    ml_requests_per_s: float = 10.0  # for the whole process
    ml_concurrency: int = 4  # requests in flight per seller
    ml_timeout_s: float = 20.0
    ml_max_tries: int = 8  # per request, for 429/5xx/network errors
    # Days of history the first sync of a newly connected seller imports (the visits API
    # keeps 150).
    ml_backfill_days: int = Field(default=90, ge=1, le=150)
    # Signing key for login tokens (JWT, HS256); generated into data_dir when unset.
    log_format: Literal["text", "json"] = "text"  # json: one object per line

    # Optional wording of score explanations by an OpenAI-compatible model.
    openai_api_key: SecretStr | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    openai_model: str = "gpt-4o-mini"
    openai_timeout_s: float = 4.0

    jwt_secret: SecretStr | None = None
    jwt_ttl_h: float = 12.0
    login_attempts_per_minute: int = 5

    # Fernet key for tokens at rest; generated into data_dir when unset.
    token_encryption_key: SecretStr | None = None

    def encryption_key(self) -> bytes:
        if self.token_encryption_key is not None:
            return self.token_encryption_key.get_secret_value().encode()
        from cryptography.fernet import Fernet

        return self._local_secret("token.key", Fernet.generate_key)

    def signing_key(self) -> bytes:
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value().encode()
        import secrets

        return self._local_secret("jwt.key", lambda: secrets.token_urlsafe(48).encode())

    def _local_secret(self, name: str, make) -> bytes:
        """A secret kept in the data directory (0600), made on first use."""
        path = self.data_dir / name
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_bytes(make())
            path.chmod(0o600)
        return path.read_bytes().strip()

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / 'superseller.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
