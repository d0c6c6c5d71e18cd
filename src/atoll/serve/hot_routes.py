"""The prediction POSTs, dispatched straight to their endpoints.

Nearly all traffic is a prediction POST, and Starlette's stack costs such a
request two error middlewares, a router walk and three wrappers around each
``send`` before the endpoint runs. This layer, between the hardening
middleware and the Starlette app, matches the hot routes itself (one regex
per route, the one Starlette compiled) and calls their endpoints with the
same ``Request``, the app's own exception handlers and the same scope keys
(``app``, ``route``, ``path_params``) the rest of the server reads. Every
other request, and every non-HTTP event, goes to Starlette unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class HotRoutes:
    """Sends the POST routes of ``hot`` directly to their endpoints; the rest to ``app``.

    Args:
        app: the Starlette app that owns every route (and the state the endpoints read).
        hot: the routes to dispatch here (plain ``Route``s with a POST endpoint).
        handlers: the app's exception handlers by exception class (the table given to
            Starlette, which must hold ``Exception``); the most specific one answers.
    """

    def __init__(
        self, app: Starlette, hot: Sequence[Route], handlers: Mapping[type[Exception], ErrorHandler]
    ) -> None:
        if Exception not in handlers:
            raise ValueError("the exception handlers must include one for Exception")
        self.app = app
        self._hot = tuple(
            (route.path_regex, route, route.endpoint)
            for route in hot
            if route.methods and "POST" in route.methods
        )
        self._handlers = handlers

    @property
    def routes(self) -> list[BaseRoute]:
        """The app's routes (the hardening layer labels refused requests with them)."""
        return self.app.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            path = scope["path"]
            for pattern, route, endpoint in self._hot:
                match = pattern.match(path)
                if match is not None:
                    scope["app"] = self.app
                    scope["route"] = route
                    scope["path_params"] = match.groupdict()
                    request = Request(scope, receive, send)
                    try:
                        response = await endpoint(request)
                    except Exception as error:
                        response = await self._handler(error)(request, error)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def _handler(self, error: Exception) -> ErrorHandler:
        """The handler of the error's nearest class, as Starlette picks it."""
        for kind in type(error).__mro__:
            if kind in self._handlers:
                return self._handlers[kind]
        return self._handlers[Exception]
