"""DynamoDB adapters, one store per module.

- ``events``: event records and segment pages (EventLog, FanoutPages), NotificationsTable
- ``jobs``: job state, the provider's feedback and a short link's clicks on it (JobLedger, FeedbackStore,
  ClickStore), NotificationsTable
- ``status``: both read together (StatusReader); ``status_items``: the key layout and what the two share
- ``links``: short links (LinkStore), LinksTable
- ``templates``: versioned templates (TemplateStore), TemplatesTable
- ``throttles``: throttle rules (ThrottleRules), TemplatesTable
- ``digest_rules``: digest rules (DigestRules), TemplatesTable
- ``digests``: digest buckets, their members and the due index (DigestStore, DigestReads), NotificationsTable
- ``webhooks``: status webhook endpoints (TemplatesTable) and their deliveries log (NotificationsTable), WebhookStore
  (issue 24: not wired yet)
- ``rules``: the cached partition reader the rule stores share
- ``api_keys``: API keys by hash (ApiKeyLookup), ApiKeysTable
- ``campaigns``: campaigns and runs (CampaignStore), CampaignsTable
- ``segments``: static segments (SegmentSource), CampaignsTable
- ``inbox``: users' in-app inboxes and their counts (InboxStore), InboxTable
- ``connections``: live WebSocket connections (ConnectionStore), ConnectionsTable
- ``items``: the helpers they share: item (de)serialisation, ``call`` and the one ``conditional`` write
- ``cursors``: signed page cursors
"""
