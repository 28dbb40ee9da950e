"""The paper's pricing and booking logic: pure Python, no Qt, no database, no sockets."""
