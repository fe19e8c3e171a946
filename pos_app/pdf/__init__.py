"""PDF pieces shared by the till and the backend (reportlab, no Qt): the fonts that print Guaraní."""
