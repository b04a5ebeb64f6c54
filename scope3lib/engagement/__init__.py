"""Supplier engagement: asking suppliers for data and taking in what they send, under four eyes.

- :mod:`.requests`: data requests (product footprints for product ids, or an annual disclosure), their status
  (sent, answered, overdue, rejected) and reminders;
- :mod:`.uploads`: the tokenised upload link, the spreadsheet template and reading a filled one back;
- :mod:`.submissions`: everything a supplier sends lands *pending* (:func:`.submissions.receive`, also the
  entry point of a PACT fulfilment); a second user of the tenant approves or rejects it, and the database
  appends the decision to the tenant's ledger;
- :mod:`.pricing`: approved product footprints price the matching purchases as supplier-specific entries.

In a notebook: ``from scope3lib.engagement import requests, submissions``. docs/engagement.md has the workflow.
"""
