"""The local stack: the whole pipeline on one machine, wired from template.yaml.

It carries no business logic: it starts the peers (moto server for the AWS
APIs, Tansu for Kafka, a demo Auth service) and delivers AWS-shaped events —
API Gateway v2 requests, MSK batches, SQS batches, scheduled events — to the
same handlers that run in Lambda.
"""
