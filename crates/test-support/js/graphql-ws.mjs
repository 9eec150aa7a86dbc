// Subscribes through the npm graphql-ws client, as a web or Node app would, and prints
// each thing that happens as one JSON line: connected, next, error, complete, closed.
// Usage: node graphql-ws.mjs '{"url": "ws://…/graphql", "token": "…", "query": "…", "take": 1}'
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const options = JSON.parse(process.argv[2]);
const print = (event) => process.stdout.write(JSON.stringify(event) + '\n');
const finish = () => setTimeout(() => process.exit(0), 50);
setTimeout(() => {
  print({ event: 'timeout' });
  process.exit(2);
}, options.timeoutMs ?? 60000);

const client = createClient({
  url: options.url,
  webSocketImpl: WebSocket,
  retryAttempts: 0,
  connectionParams: options.token ? { Authorization: `Bearer ${options.token}` } : {},
  on: {
    connected: () => print({ event: 'connected' }),
    closed: (event) => {
      print({ event: 'closed', code: event.code, reason: event.reason });
      finish();
    },
  },
});

let seen = 0;
client.subscribe(
  { query: options.query, variables: options.variables ?? {} },
  {
    next: (result) => {
      print({ event: 'next', result });
      seen += 1;
      if (seen >= (options.take ?? 1)) {
        client.dispose();
        finish();
      }
    },
    error: (error) => {
      const reported = Array.isArray(error)
        ? error
        : error && typeof error.code === 'number'
          ? { code: error.code, reason: error.reason }
          : String(error);
      print({ event: 'error', error: reported });
      finish();
    },
    complete: () => {
      print({ event: 'complete' });
      if (!options.stayAfterComplete) finish();
    },
  },
);
