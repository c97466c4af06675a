"""`make demo`: a demo shop seeded through the real ingestion path (console.demo.seed for Stripe,
console.demo.tickets for email and LINE), the localstripe launcher and the stand-in for the LINE
Messaging API that the demo and the tests share."""
