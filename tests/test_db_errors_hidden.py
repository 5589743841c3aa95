"""Every engine the app makes hides bound parameters in its errors: a failed statement's
message may reach a log, a job's recorded error or a 5xx trace, and the values it was
given can be tokens or personal data."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from superseller.db.engine import make_engine


def test_a_failed_statement_does_not_show_its_parameters(db_url):
    eng = make_engine(db_url)
    try:
        with pytest.raises(DBAPIError) as caught, eng.connect() as conn:
            conn.execute(text("SELECT * FROM no_such_table WHERE token = :t"), {"t": "tok-s3cret"})
    finally:
        eng.dispose()
    assert "no_such_table" in str(caught.value)  # the statement is still named
    assert "s3cret" not in str(caught.value)
