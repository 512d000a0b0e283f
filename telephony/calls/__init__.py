"""Calls: the inbox that takes pushes (`inbox`), the state machine that applies them (`apply`), the
provider-neutral pushes (`pushes`), the one call vocabulary (`outcome`) and placing calls
(`dialing`)."""
