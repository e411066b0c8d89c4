"""What every overlay of the dashboard shares: a bordered box whose bottom edge says how to close it, and the keys.

The box's border is drawn whatever the terminal's size (its body scrolls
inside it), so "escape closes" is always in view; the dashboard's keys act
from the overlay (see tui/keys.py) instead of being swallowed.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen

from mlstress_tui.tui.keys import overlay_keys


class Overlay(ModalScreen[None]):
    """A box over the dashboard; subclasses give its title, its own key and its body."""

    # The key that opened it closes it too (besides escape); the subclass names it.
    OWN_KEY = ""
    OWN_KEY_DISPLAY = ""
    TITLE_TEXT = ""
    # Set when a key closes it to act on the dashboard: what that key says goes to the dashboard, not a toast.
    closing = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        # Bindings by subclass: the dashboard's keys, less its own, which closes it.
        own = frozenset({cls.OWN_KEY}) if cls.OWN_KEY else frozenset()
        cls.BINDINGS = [*overlay_keys(own),
                        Binding(",".join(["escape", *own]), "dismiss", "Close", id=f"close-{cls.__name__.lower()}")]
        super().__init_subclass__(**kwargs)

    def compose(self) -> ComposeResult:
        body = VerticalScroll(id="overlay-body")
        body.border_title = self.TITLE_TEXT
        body.border_subtitle = self.close_hint()
        with body:
            yield from self.body()

    def body(self) -> ComposeResult:
        yield from ()

    def close_hint(self) -> str:
        """Said on the box's bottom edge: how to close it, and that the dashboard's keys work from here."""
        own = f" or {self.OWN_KEY_DISPLAY or self.OWN_KEY}" if self.OWN_KEY else ""
        return f"esc{own} closes · other keys act on the dashboard"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "close_and" and parameters:
            return self.app.check_action(str(parameters[0]), ())
        return True

    def action_close_and(self, action: str) -> None:
        """Close this overlay, then do what the key does on the dashboard."""
        self.closing = True
        self.dismiss()
        self.app.call_later(self.app.run_action, action)
