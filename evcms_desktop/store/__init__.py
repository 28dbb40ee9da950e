"""Persistence: peewee models on one SQLite file, migrations, and the queries around them."""
