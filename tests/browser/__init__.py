"""Helpers for the browser tests: a real Airflow API server (with its UI) and headless Chromium."""
