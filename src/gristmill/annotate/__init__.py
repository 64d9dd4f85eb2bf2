"""Annotation projects: questions, record views, the assignment queue, suggestions.

Quality control (agreement, aggregation, write-back) lives beside these modules in
``agreement.py``, ``aggregate.py`` and ``writeback.py``; the web app is in ``server``.
"""
