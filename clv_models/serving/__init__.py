"""The online CLV endpoint (``clv serve``)."""
