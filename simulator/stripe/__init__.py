"""A Stripe stand-in for tests and the demo: the subset of Stripe's API the control plane calls
(Customers, Checkout Sessions, PaymentIntents, Refunds, Charges), a hosted checkout page, and
webhook events signed as Stripe signs them. See docs/contributors/stripe-simulator.md."""
