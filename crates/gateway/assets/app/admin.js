// The admin console: written next.
