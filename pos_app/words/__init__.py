"""The till's words, shared by screen, paper and web: gettext catalogs, babel formatting, verdicts and reasons (no Qt)."""
