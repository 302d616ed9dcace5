"""Dashboard pages, each run by st.navigation from dashboard/app.py (a package only so wheels carry them)."""
