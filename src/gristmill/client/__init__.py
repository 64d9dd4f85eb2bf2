"""The Python SDK of the annotation app: ``Client(url, token)``.

from gristmill.client import Client
c = Client("http://127.0.0.1:8000", token)
pid = c.create_project("prefs", questions=[...], dataset="hh@1", overlap=3)["id"]
c.add_member(pid, "alice", "annotator")
c.push_suggestions(pid, [{"record_id": ..., "question": "better", "value": {...},
                          "score": 0.8, "agent": "model:judge"}])
rows = c.answers(pid)                       # long format
ref = c.export(pid)["ref"]                  # a new dataset version
"""

from gristmill.client.client import ApiError, Client

__all__ = ["ApiError", "Client"]
