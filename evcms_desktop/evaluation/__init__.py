"""The paper's evaluation (Section 5.1) reproduced through the real booking service.

No Qt here: the command line and the console's Analysis tab both build on this package.
"""
