"""Voice calls through Twilio Programmable Voice: the call's record, its TwiML and its callbacks.

What a call's callbacks mean for the journey (`voice.*` events)."""
