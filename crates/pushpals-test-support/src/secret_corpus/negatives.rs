//! Files that hold no secret but look as if they might: identifiers and
//! hashes, documented example keys, placeholders, interpolations, vault
//! references, reads of the environment, encrypted values, public
//! certificates, schema fields.

use super::{BASE64, CorpusFile, Rng, base64};

/// The negative files, each a few times with fresh random parts.
pub(super) fn files(r: &mut Rng) -> Vec<CorpusFile> {
    let mut out = Vec::new();
    for round in 0..3 {
        for (path, content) in templates(r) {
            out.push(CorpusFile {
                path: format!("n{round}/{path}"),
                content,
                secrets: Vec::new(),
            });
        }
    }
    out
}

fn templates(r: &mut Rng) -> Vec<(&'static str, String)> {
    let (sub, tenant, client) = (r.uuid(), r.uuid(), r.uuid());
    let sha = r.hex(40);
    let cert: Vec<String> = (0..8).map(|_| r.chars(BASE64, 64)).collect();
    let sealed = r.chars(BASE64, 300);
    let integrity = base64(&(0..64).map(|_| r.below(256) as u8).collect::<Vec<_>>());
    let image = r.chars(BASE64, 76);
    vec![
        ("infra/azure.tf", format!(
            "provider \"azurerm\" {{\n  features {{}}\n  subscription_id = \"{sub}\"\n  tenant_id       = \"{tenant}\"\n  client_id       = \"{client}\"\n}}\n"
        )),
        ("config/azure.json", format!(
            "{{\n  \"subscriptionId\": \"{sub}\",\n  \"tenantId\": \"{tenant}\",\n  \"objectId\": \"{client}\"\n}}\n"
        )),
        ("certs/ca.pem", format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", cert.join("\n")
        )),
        ("certs/server.crt", format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", cert[..5].join("\n")
        )),
        ("keys/deploy.pub", format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", cert[..3].join("\n")
        )),
        ("docs/aws.md", "Configure the CLI:\n\n    aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n    aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n".to_owned()),
        ("config/example.env", "DB_PASSWORD=<your-password>\nAPI_KEY=YOUR_API_KEY_HERE\nSECRET_KEY=changeme\nGITHUB_TOKEN=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\nSTRIPE_SECRET_KEY=sk_test_placeholder\n".to_owned()),
        ("config/template.yaml", "database:\n  password: \"{{ .Values.db.password }}\"\n  token: ${API_TOKEN}\n  secret: '%(secret)s'\n  api_key: \"{{ secrets.API_KEY }}\"\n".to_owned()),
        ("config/urls.env", "DATABASE_URL=postgres://app:${DB_PASSWORD}@db.internal:5432/billing\nREDIS_URL=redis://:$(REDIS_PASSWORD)@cache:6379/0\nAMQP_URL=amqp://user:{{password}}@mq:5672/\nMONGO_URL=mongodb://app:%s@mongo:27017/app\n".to_owned()),
        ("config/vault.yaml", "db:\n  password: vault:secret/data/billing/db#password\n  token: ref+vault://secret/billing#/token\n  api_key: arn:aws:secretsmanager:eu-west-1:123456789012:secret:billing/api-key-AbCdEf\n  client_secret: ${vault:billing/oauth:client_secret}\n".to_owned()),
        ("src/client.js", "const token = process.env.GITHUB_TOKEN;\nconst apiKey = process.env['STRIPE_SECRET_KEY'] || '';\nconst password = config.get('db.password');\nexport default { token, apiKey, password };\n".to_owned()),
        ("src/settings.py", "import os\n\nSECRET_KEY = os.environ[\"DJANGO_SECRET_KEY\"]\nDB_PASSWORD = os.getenv(\"DB_PASSWORD\", \"\")\nAPI_TOKEN = settings.API_TOKEN\npassword = None\n".to_owned()),
        ("cmd/main.go", "package main\n\nimport \"os\"\n\nfunc main() {\n\ttoken := os.Getenv(\"GITHUB_TOKEN\")\n\tsecretKey := cfg.SecretKey\n\trun(token, secretKey)\n}\n".to_owned()),
        ("src/main/java/app/Db.java", "package app;\n\nclass Db {\n    String password = System.getenv(\"DB_PASSWORD\");\n    String apiKey = props.getProperty(\"api.key\");\n}\n".to_owned()),
        ("k8s/sealed-secret.yaml", format!(
            "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: billing\nspec:\n  encryptedData:\n    password: Ag{sealed}\n    api_key: Ag{}\n", r.chars(BASE64, 300)
        )),
        ("app/models.py", "from django.db import models\n\n\nclass Account(models.Model):\n    password = models.CharField(max_length=128)\n    api_token = models.CharField(max_length=64, blank=True)\n    secret_hash = models.BinaryField()\n".to_owned()),
        ("infra/vars.tf", "variable \"db_password\" {\n  type      = string\n  sensitive = true\n}\n\nresource \"aws_db_instance\" \"main\" {\n  password = var.db_password\n  username = \"app\"\n}\n\nresource \"random_password\" \"api\" {\n  length = 32\n}\n\nlocals {\n  api_secret = random_password.api.result\n  token      = data.aws_secretsmanager_secret_version.api.secret_string\n}\n".to_owned()),
        ("package-info.json", format!(
            "{{\n  \"name\": \"billing\",\n  \"integrity\": \"sha512-{integrity}\",\n  \"resolved\": \"https://registry.example.com/billing/-/billing-1.0.0.tgz\",\n  \"gitHead\": \"{sha}\"\n}}\n"
        )),
        ("CHANGELOG.md", format!(
            "## 1.4.0\n\n- Rotate the API token on start ({})\n- Fix password reset emails ({})\n- Token refresh uses the new endpoint\n", &sha[..12], r.hex(12)
        )),
        ("web/logo.html", format!(
            "<img alt=\"logo\" src=\"data:image/png;base64,{image}\">\n<input type=\"password\" name=\"password\" autocomplete=\"current-password\">\n"
        )),
        ("tests/test_auth.py", "def test_login(client):\n    response = client.post(\"/login\", data={\"password\": \"password\"})\n    assert response.status_code == 200\n    token = response.json()[\"token\"]\n    assert token\n".to_owned()),
        ("schema.graphql", "type Session {\n  token: String!\n  expiresAt: DateTime!\n}\n\ntype Mutation {\n  resetPassword(token: String!, password: String!): Boolean\n}\n".to_owned()),
        ("docs/errors.md", "| code | meaning |\n|---|---|\n| 401 | the token is missing or expired |\n| 403 | the API key may not do this |\n".to_owned()),
        ("config/auth.yaml", "auth:\n  token_type: bearer\n  token_ttl: 3600\n  password_min_length: 12\n  secret_rotation_days: 90\n  api_key_header: X-Api-Key\n".to_owned()),
        ("src/crypto.rs", format!(
            "/// The SHA-256 of an empty input.\npub const EMPTY_SHA256: &str = \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\";\npub const BUILD_COMMIT: &str = \"{sha}\";\n"
        )),
        ("ci/workflow.yml", "name: ci\non: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    env:\n      GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}\n      NPM_TOKEN: ${{ secrets.NPM_TOKEN }}\n    steps:\n      - run: make test\n".to_owned()),
        ("docs/api.http", "### Me\nGET https://api.example.com/v1/me\nAuthorization: Bearer {{token}}\n\n### Login\nPOST https://api.example.com/v1/login\nAuthorization: Basic <credentials>\n".to_owned()),
        ("home/.npmrc", "registry=https://registry.example.com/\n//registry.example.com/:_authToken=${NPM_TOKEN}\n".to_owned()),
        ("logs/app.log", format!(
            "2026-03-01T10:00:00Z INFO request id={} user={} took=12ms\n2026-03-01T10:00:01Z INFO token refreshed for session {}\n", r.uuid(), r.digits(6), r.hex(16)
        )),
        ("config/application.properties", "spring.datasource.url=jdbc:postgresql://db:5432/billing\nspring.datasource.password=${DB_PASSWORD}\napp.api-key=${API_KEY:}\n".to_owned()),
        ("src/main/java/app/Keys.java", "package app;\n\nclass Keys {\n    @Value(\"${api.key}\")\n    private String apiKey;\n}\n".to_owned()),
        ("config/initializers/secrets.rb", "SECRET_KEY_BASE = ENV.fetch(\"SECRET_KEY_BASE\")\nStripe.api_key = ENV[\"STRIPE_SECRET_KEY\"]\n".to_owned()),
        ("config/db.php", "<?php\n$password = getenv('DB_PASSWORD');\n$apiKey = $_ENV['API_KEY'] ?? null;\n".to_owned()),
        ("src/Startup.cs", "var apiKey = Configuration[\"ApiKey\"];\nvar clientSecret = builder.Configuration.GetValue<string>(\"ClientSecret\");\n".to_owned()),
        ("web/stripe.js", format!(
            "const stripe = Stripe('pk_live_{}');\nconst STRIPE_SECRET_KEY = 'sk_test_{}';\n", r.alnum(24), r.alnum(24)
        )),
        ("home/authorized_keys", format!(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{} deploy@build\n", r.chars(BASE64, 43)
        )),
        ("charts/billing/values.yaml", "database:\n  existingSecret: billing-db-secret\n  secretName: billing-prod-database-credentials\n  token_url: https://auth.example.com/oauth/token\n  api_key_env: OPENAI_API_KEY\n  password: \"\"\n".to_owned()),
        ("web/vendor.min.js", format!(
            "!function(e){{var t={{}};function n(r){{if(t[r])return t[r].exports;var o=t[r]={{i:r,l:!1,exports:{{}}}};return e[r].call(o.exports,o,o.exports,n),o.l=!0,o.exports}}n.m=e,n.c=t,n.d=function(e,t,r){{n.o(e,t)||Object.defineProperty(e,t,{{enumerable:!0,get:r}})}};var token=\"{}\"===typeof Symbol}}([]);\n",
            "undefined"
        )),
        ("go.mod.sum-like.txt", format!(
            "golang.example.org/x/crypto v0.31.0 h1:{}=\ngolang.example.org/x/crypto v0.31.0/go.mod h1:{}=\n",
            r.chars(BASE64, 43), r.chars(BASE64, 43)
        )),
        ("config/keys.yaml", format!(
            "signing:\n  key_id: {}\n  public_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{}\n  algorithm: EdDSA\n",
            r.hex(16), r.chars(BASE64, 43)
        )),
        ("Dockerfile", "FROM node:20-slim\nARG NPM_TOKEN\nENV PASSWORD_FILE=/run/secrets/db_password\nRUN --mount=type=secret,id=npm npm ci\n".to_owned()),
    ]
}
