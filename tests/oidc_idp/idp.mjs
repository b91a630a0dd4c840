// A real OpenID Connect provider for siteflow's single sign-on tests: panva's oidc-provider
// (OpenID Certified), with its development login and consent pages. Everything it needs comes
// from the environment, so the test decides the port, the client and the people:
//   IDP_PORT, IDP_CLIENT_ID, IDP_CLIENT_SECRET, IDP_REDIRECT_URI,
//   IDP_ACCOUNTS  JSON {"login": {"email": "...", "email_verified": true, "name": "..."}}
// The development login page accepts any password; the account is the login typed.
import Provider from 'oidc-provider';

const port = Number(process.env.IDP_PORT);
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(process.env.IDP_ACCOUNTS || '{}');

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.IDP_CLIENT_ID,
    client_secret: process.env.IDP_CLIENT_SECRET,
    redirect_uris: [process.env.IDP_REDIRECT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['siteflow-test-idp-cookie-key'] },
  async findAccount(ctx, id) {
    const person = accounts[id];
    if (!person) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...person }; } };
  },
});
provider.proxy = false;
provider.listen(port, '127.0.0.1', () => console.log(`idp listening on ${issuer}`));
