"""Hardware inventory records (owned by the inventory collectors; data only)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class Inventory(BaseModel):
    model_config = ConfigDict(frozen=True)

    scanned_at: datetime
