"""The manager's day report screen: the view, its tables and chart, and the void and export actions on it."""
