"""DynamoDB adapters, one store per module.

- ``status``: event records and job state (the EventLog, FanoutPages, JobLedger and StatusReader ports),
  NotificationsTable; a short link's clicks on its job (ClickStore)
- ``links``: short links (LinkStore), LinksTable
- ``templates``: versioned templates (TemplateStore), TemplatesTable
- ``api_keys``: API keys by hash (ApiKeyLookup), ApiKeysTable
- ``campaigns``: campaigns and runs (CampaignStore), CampaignsTable
- ``segments``: static segments (SegmentSource), CampaignsTable
- ``inbox``: users' in-app inboxes and their counts (InboxStore), InboxTable
- ``connections``: live WebSocket connections (ConnectionStore), ConnectionsTable
- ``items``: the helpers they share: item (de)serialisation, ``call`` and the one ``conditional`` write
- ``cursors``: signed page cursors
"""
