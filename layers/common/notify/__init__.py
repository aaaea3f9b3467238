"""Domain package shared by every function of the notification service.

Nothing in here reads ``os.environ`` except :mod:`notify.settings`, and only
:mod:`notify.adapters` imports boto3, kafka or httpx.
"""
