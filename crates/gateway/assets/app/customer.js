// The customer app: written next.
