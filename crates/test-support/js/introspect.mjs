// graphql-js's own introspection query with its default options, as GraphiQL, codegen
// and Apollo tooling send it; prints what the schema built from the answer holds.
// Usage: node introspect.mjs '{"url": "http://…/graphql"}'
import { buildClientSchema, getIntrospectionQuery, printSchema } from 'graphql';

const options = JSON.parse(process.argv[2]);
const response = await fetch(options.url, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ query: getIntrospectionQuery() }),
});
const body = await response.json();
if (body.errors) {
  console.log(JSON.stringify({ status: response.status, errors: body.errors }));
  process.exit(1);
}
const schema = buildClientSchema(body.data);
console.log(
  JSON.stringify({
    status: response.status,
    types: Object.keys(schema.getTypeMap()).length,
    notification: Boolean(schema.getType('Notification')),
    subscription: schema.getSubscriptionType()?.name ?? null,
    sdlLines: printSchema(schema).split('\n').length,
  }),
);
