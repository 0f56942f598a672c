"""Voice calls through Twilio Programmable Voice: the call's durable record, its TwiML, and what its
callbacks mean for the journey (`voice.*` events)."""
