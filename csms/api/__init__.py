"""The REST API under ``/api/v1``: stations, runs, tickets, commands, logs, driver reports,
webhook deliveries, the fleet summary and the live event stream.

Every router is built by a ``router(ctx)`` function from an :class:`~csms.api.context.ApiContext`
(the components it reads and drives); :func:`csms.api.routes.api_router` assembles them.
"""
