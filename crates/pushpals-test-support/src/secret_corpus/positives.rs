//! Files with planted secrets: each kind's value made the way its issuer
//! makes them (prefixes, lengths, alphabets; random content), set in the
//! places people leave them.
//!
//! Over 400 lines: one table of about fifty secret kinds, and the file
//! formats they are planted in; splitting the table would only scatter it.

use super::{ALNUM, BASE64, CorpusFile, Rng, base64, planted};

/// A kind: its name, the variable names it is kept under, and how a value
/// is made.
struct Kind {
    name: &'static str,
    vars: &'static [&'static str],
    make: fn(&mut Rng) -> String,
}

const KINDS: &[Kind] = &[
    Kind {
        name: "aws-access-key-id",
        vars: &["AWS_ACCESS_KEY_ID", "aws_access_key_id"],
        make: |r| format!("AKIA{}", r.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)),
    },
    Kind {
        name: "aws-secret-access-key",
        vars: &[
            "AWS_SECRET_ACCESS_KEY",
            "aws_secret_access_key",
            "awsSecretKey",
        ],
        make: |r| r.chars(&format!("{ALNUM}/+"), 40),
    },
    Kind {
        name: "github-classic-token",
        vars: &["GITHUB_TOKEN", "GH_TOKEN", "githubToken"],
        make: |r| format!("ghp_{}", r.alnum(36)),
    },
    Kind {
        name: "github-fine-grained-token",
        vars: &["GITHUB_PAT", "token"],
        make: |r| format!("github_pat_11{}_{}", r.alnum(20), r.alnum(59)),
    },
    Kind {
        name: "github-oauth-token",
        vars: &["GH_OAUTH", "oauth_token"],
        make: |r| format!("gho_{}", r.alnum(36)),
    },
    Kind {
        name: "gitlab-token",
        vars: &["GITLAB_TOKEN", "CI_JOB_TOKEN_OVERRIDE"],
        make: |r| format!("glpat-{}", r.chars(&format!("{ALNUM}_-"), 20)),
    },
    Kind {
        name: "slack-bot-token",
        vars: &["SLACK_BOT_TOKEN", "slack_token"],
        make: |r| format!("xoxb-{}-{}-{}", r.digits(12), r.digits(13), r.alnum(24)),
    },
    Kind {
        name: "slack-webhook",
        vars: &["SLACK_WEBHOOK_URL", "webhook"],
        make: |r| {
            format!(
                "https://hooks.slack.com/services/T{}/B{}/{}",
                r.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10),
                r.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10),
                r.alnum(24)
            )
        },
    },
    Kind {
        name: "discord-webhook",
        vars: &["DISCORD_WEBHOOK", "alerts_webhook"],
        make: |r| {
            format!(
                "https://discord.com/api/webhooks/{}/{}",
                r.digits(19),
                r.chars(&format!("{ALNUM}_-"), 68)
            )
        },
    },
    Kind {
        name: "stripe-secret-key",
        vars: &["STRIPE_SECRET_KEY", "stripeKey"],
        make: |r| format!("sk_live_{}", r.alnum(99)),
    },
    Kind {
        name: "stripe-restricted-key",
        vars: &["STRIPE_RESTRICTED_KEY"],
        make: |r| format!("rk_live_{}", r.alnum(99)),
    },
    Kind {
        name: "google-api-key",
        vars: &["GOOGLE_API_KEY", "mapsKey"],
        make: |r| format!("AIza{}", r.chars(&format!("{ALNUM}_-"), 35)),
    },
    Kind {
        name: "openai-key",
        vars: &["OPENAI_API_KEY", "openai_key"],
        make: |r| {
            format!(
                "sk-proj-{}T3BlbkFJ{}",
                r.chars(&format!("{ALNUM}_-"), 74),
                r.chars(&format!("{ALNUM}_-"), 74)
            )
        },
    },
    Kind {
        name: "anthropic-key",
        vars: &["ANTHROPIC_API_KEY", "claude_key"],
        make: |r| format!("sk-ant-api03-{}AA", r.chars(&format!("{ALNUM}_-"), 93)),
    },
    Kind {
        name: "jwt",
        vars: &["ID_TOKEN", "session_jwt"],
        make: |r| {
            let header = base64(b"{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
            let body =
                base64(format!("{{\"sub\":\"{}\",\"iat\":1700000000}}", r.digits(8)).as_bytes());
            let url = |s: String| s.trim_end_matches('=').replace('+', "-").replace('/', "_");
            format!(
                "{}.{}.{}",
                url(header),
                url(body),
                r.chars(&format!("{ALNUM}_-"), 43)
            )
        },
    },
    Kind {
        name: "twilio-auth-token",
        vars: &["TWILIO_AUTH_TOKEN", "twilioAuthToken"],
        make: |r| r.hex(32),
    },
    Kind {
        name: "twilio-api-key",
        vars: &["TWILIO_API_KEY_SECRET", "twilio_key"],
        make: |r| format!("SK{}", r.hex(32)),
    },
    Kind {
        name: "sendgrid-key",
        vars: &["SENDGRID_API_KEY", "sendgridKey"],
        make: |r| {
            format!(
                "SG.{}.{}",
                r.chars(&format!("{ALNUM}_-"), 22),
                r.chars(&format!("{ALNUM}_-"), 43)
            )
        },
    },
    Kind {
        name: "mailgun-key",
        vars: &["MAILGUN_API_KEY"],
        make: |r| format!("key-{}", r.hex(32)),
    },
    Kind {
        name: "npm-token",
        vars: &["NPM_TOKEN", "NODE_AUTH_TOKEN"],
        make: |r| format!("npm_{}", r.alnum(36)),
    },
    Kind {
        name: "pypi-token",
        vars: &["PYPI_TOKEN", "TWINE_PASSWORD"],
        make: |r| format!("pypi-AgE{}", r.chars(&format!("{ALNUM}_-"), 80)),
    },
    Kind {
        name: "dockerhub-token",
        vars: &["DOCKERHUB_TOKEN", "docker_pat"],
        make: |r| format!("dckr_pat_{}", r.chars(&format!("{ALNUM}_-"), 27)),
    },
    Kind {
        name: "digitalocean-token",
        vars: &["DIGITALOCEAN_TOKEN", "do_token"],
        make: |r| format!("dop_v1_{}", r.hex(64)),
    },
    Kind {
        name: "huggingface-token",
        vars: &["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"],
        make: |r| {
            format!(
                "hf_{}",
                r.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 34)
            )
        },
    },
    Kind {
        name: "shopify-token",
        vars: &["SHOPIFY_ACCESS_TOKEN"],
        make: |r| format!("shpat_{}", r.hex(32)),
    },
    Kind {
        name: "square-token",
        vars: &["SQUARE_ACCESS_TOKEN"],
        make: |r| format!("EAAA{}", r.chars(&format!("{ALNUM}_-"), 60)),
    },
    Kind {
        name: "datadog-api-key",
        vars: &["DD_API_KEY", "datadog_api_key"],
        make: |r| r.hex(32),
    },
    Kind {
        name: "newrelic-key",
        vars: &["NEW_RELIC_API_KEY"],
        make: |r| {
            format!(
                "NRAK-{}",
                r.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 27)
            )
        },
    },
    Kind {
        name: "telegram-bot-token",
        vars: &["TELEGRAM_BOT_TOKEN", "bot_token"],
        make: |r| format!("{}:AA{}", r.digits(10), r.chars(&format!("{ALNUM}_-"), 33)),
    },
    Kind {
        name: "age-secret-key",
        vars: &["SOPS_AGE_KEY"],
        make: |r| {
            format!(
                "AGE-SECRET-KEY-1{}",
                r.chars("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)
            )
        },
    },
    Kind {
        name: "linear-key",
        vars: &["LINEAR_API_KEY"],
        make: |r| format!("lin_api_{}", r.alnum(40)),
    },
    Kind {
        name: "doppler-token",
        vars: &["DOPPLER_TOKEN"],
        make: |r| format!("dp.pt.{}", r.alnum(43)),
    },
    Kind {
        name: "vault-token",
        vars: &["VAULT_TOKEN"],
        make: |r| format!("hvs.{}", r.chars(&format!("{ALNUM}_-"), 90)),
    },
    Kind {
        name: "databricks-token",
        vars: &["DATABRICKS_TOKEN"],
        make: |r| format!("dapi{}", r.hex(32)),
    },
    Kind {
        name: "notion-token",
        vars: &["NOTION_TOKEN"],
        make: |r| format!("ntn_{}", r.alnum(46)),
    },
    Kind {
        name: "heroku-api-key",
        vars: &["HEROKU_API_KEY"],
        make: |r| r.uuid(),
    },
    Kind {
        name: "cloudflare-api-token",
        vars: &["CLOUDFLARE_API_TOKEN", "cf_api_token"],
        make: |r| r.chars(&format!("{ALNUM}_-"), 40),
    },
    Kind {
        name: "azure-ad-client-secret",
        vars: &["AZURE_CLIENT_SECRET", "aadSecret"],
        make: |r| format!("{}8Q~{}", r.alnum(3), r.chars(&format!("{ALNUM}_~.-"), 34)),
    },
    Kind {
        name: "postman-key",
        vars: &["POSTMAN_API_KEY"],
        make: |r| format!("PMAK-{}-{}", r.hex(24), r.hex(34)),
    },
    Kind {
        name: "atlassian-token",
        vars: &["JIRA_API_TOKEN", "confluence_token"],
        make: |r| format!("ATATT3{}", r.chars(&format!("{ALNUM}_-"), 186)),
    },
    Kind {
        name: "grafana-token",
        vars: &["GRAFANA_SERVICE_ACCOUNT_TOKEN"],
        make: |r| format!("glsa_{}_{}", r.alnum(32), r.hex(8)),
    },
    Kind {
        name: "google-oauth-secret",
        vars: &["GOOGLE_CLIENT_SECRET", "oauthClientSecret"],
        make: |r| format!("GOCSPX-{}", r.chars(&format!("{ALNUM}_-"), 28)),
    },
    Kind {
        name: "groq-key",
        vars: &["GROQ_API_KEY"],
        make: |r| format!("gsk_{}", r.alnum(52)),
    },
    Kind {
        name: "slack-app-token",
        vars: &["SLACK_APP_TOKEN"],
        make: |r| {
            format!(
                "xapp-1-{}-{}-{}",
                r.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 11),
                r.digits(13),
                r.hex(64)
            )
        },
    },
    Kind {
        name: "gitlab-runner-token",
        vars: &["RUNNER_TOKEN", "runner_auth"],
        make: |r| format!("glrt-{}", r.chars(&format!("{ALNUM}_-"), 20)),
    },
    Kind {
        name: "generic-password",
        vars: &[
            "DB_PASSWORD",
            "password",
            "adminPassword",
            "SMTP_PASS",
            "redis_password",
        ],
        make: Rng::password,
    },
    Kind {
        name: "generic-secret",
        vars: &[
            "CLIENT_SECRET",
            "client_secret",
            "SECRET_KEY",
            "app_secret",
            "signing_key",
        ],
        make: |r| {
            let length = 32 + r.below(16);
            r.chars(&format!("{ALNUM}_-"), length)
        },
    },
    Kind {
        name: "generic-api-key",
        vars: &["API_KEY", "apiKey", "x_api_key", "SERVICE_API_KEY"],
        make: |r| r.alnum(32),
    },
];

/// Formats a kind's value can be planted in: a path and lines, where `{V}`
/// is the variable's name and `{S}` the secret.
const FORMATS: &[(&str, &str)] = &[
    (
        "deploy/app.env",
        "# production settings\nAPP_ENV=production\n{V}={S}\nLOG_LEVEL=info\n",
    ),
    (
        "config/settings.yaml",
        "service:\n  name: billing\n  replicas: 2\n  {V}: {S}\n  timeout: 30\n",
    ),
    (
        "config/settings.json",
        "{\n  \"name\": \"billing\",\n  \"{V}\": \"{S}\",\n  \"retries\": 3\n}\n",
    ),
    (
        "config/app.toml",
        "[service]\nname = \"billing\"\n{V} = \"{S}\"\nport = 8080\n",
    ),
    (
        "config/app.ini",
        "[default]\nregion = eu-west-1\n{V} = {S}\noutput = json\n",
    ),
    (
        "src/settings.py",
        "import os\n\nDEBUG = False\n{V} = \"{S}\"\n\n\ndef client():\n    return Client(key={V})\n",
    ),
    (
        "src/config.js",
        "const region = 'eu-west-1';\nconst {V} = '{S}';\nmodule.exports = { region, {V} };\n",
    ),
    (
        "internal/config/config.go",
        "package config\n\nconst Region = \"eu-west-1\"\n\nvar {V} = \"{S}\"\n",
    ),
    (
        "src/main/java/app/Config.java",
        "package app;\n\npublic class Config {\n    static final String {V} = \"{S}\";\n}\n",
    ),
    (
        "src/config.rs",
        "pub const REGION: &str = \"eu-west-1\";\npub const {V}: &str = \"{S}\";\n",
    ),
    (
        "scripts/deploy.sh",
        "#!/bin/sh\nset -eu\nexport {V}=\"{S}\"\n./bin/deploy --region eu-west-1\n",
    ),
    (
        "Dockerfile",
        "FROM debian:bookworm-slim\nWORKDIR /app\nENV {V}={S}\nCMD [\"/app/server\"]\n",
    ),
    (
        ".github/workflows/deploy.yml",
        "name: deploy\non: push\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    env:\n      {V}: {S}\n    steps:\n      - run: make deploy\n",
    ),
    (
        "infra/main.tf",
        "resource \"app_service\" \"billing\" {\n  name   = \"billing\"\n  region = \"eu-west-1\"\n  {V} = \"{S}\"\n}\n",
    ),
    (
        "logs/worker.log",
        "2026-03-01T10:00:00Z INFO worker starting\n2026-03-01T10:00:01Z DEBUG config loaded {V}={S}\n2026-03-01T10:00:02Z INFO ready\n",
    ),
    (
        "notes/.bash_history",
        "cd ~/src/billing\ngit pull\nexport {V}={S}\nmake run\n",
    ),
    (
        "notebooks/explore.ipynb",
        "{\n \"cells\": [\n  {\n   \"cell_type\": \"code\",\n   \"source\": [\n    \"import os\\n\",\n    \"os.environ[\\\"{V}\\\"] = \\\"{S}\\\"\\n\"\n   ]\n  }\n ],\n \"nbformat\": 4\n}\n",
    ),
    (
        "docs/setup.md",
        "# Setup\n\nRun the service with:\n\n    {V}={S} ./server\n\nThen open the dashboard.\n",
    ),
    (
        "k8s/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          env:\n            - name: {V}\n              value: \"{S}\"\n",
    ),
    (
        "docker-compose.yml",
        "services:\n  app:\n    image: billing:latest\n    environment:\n      - {V}={S}\n",
    ),
];

/// The positive files: every kind in three formats, then the kinds with a
/// format of their own.
pub(super) fn files(rng: &mut Rng) -> Vec<CorpusFile> {
    let mut files = Vec::new();
    let mut n = 0;
    let mut next_path = |path: &str| {
        n += 1;
        format!("p{n:03}/{path}")
    };
    for kind in KINDS {
        let mut formats: Vec<usize> = (0..FORMATS.len()).collect();
        for _ in 0..3 {
            let format = formats.remove(rng.below(formats.len()));
            let (path, template) = FORMATS[format];
            let var = *rng.pick(kind.vars);
            let secret = (kind.make)(rng);
            let template = template.replace("{V}", var);
            let secret = if path.ends_with(".ipynb") {
                secret.replace('\\', "\\\\")
            } else {
                secret
            };
            files.push(planted(next_path(path), &template, &secret, kind.name));
        }
    }
    for (path, template, secret, kind) in own_formats(rng) {
        files.push(planted(next_path(path), &template, &secret, kind));
    }
    files
}

/// Kinds that live in files of their own shape.
fn own_formats(r: &mut Rng) -> Vec<(&'static str, String, String, &'static str)> {
    let mut out = Vec::new();
    for (label, footer) in [
        ("RSA PRIVATE KEY", "RSA PRIVATE KEY"),
        ("OPENSSH PRIVATE KEY", "OPENSSH PRIVATE KEY"),
        ("EC PRIVATE KEY", "EC PRIVATE KEY"),
        ("PRIVATE KEY", "PRIVATE KEY"),
    ] {
        let body: Vec<String> = (0..6).map(|_| r.chars(BASE64, 64)).collect();
        out.push((
            "deploy/keys/service_key.txt",
            format!("{{S}}\n{}\n-----END {footer}-----\n", body.join("\n")),
            format!("-----BEGIN {label}-----"),
            "private-key",
        ));
    }
    let pem_line = r.chars(BASE64, 64);
    out.push((
        "config/service-account.json",
        format!(
            "{{\n  \"type\": \"service_account\",\n  \"project_id\": \"billing-prod\",\n  \"private_key_id\": \"{}\",\n  \"private_key\": \"{{S}}\\n{pem_line}\\n-----END PRIVATE KEY-----\\n\",\n  \"client_email\": \"svc@billing-prod.iam.example.com\"\n}}\n",
            r.hex(40)
        ),
        "-----BEGIN PRIVATE KEY-----".to_owned(),
        "private-key",
    ));
    for (scheme, port) in [
        ("postgres", 5432),
        ("mysql", 3306),
        ("mongodb+srv", 27017),
        ("redis", 6379),
        ("amqp", 5672),
    ] {
        let password = url_encoded(&r.password());
        for (path, template) in [
            (
                "config/database.yml",
                format!(
                    "production:\n  url: {scheme}://app:{{S}}@db.internal:{port}/billing\n  pool: 10\n"
                ),
            ),
            (
                "src/db.py",
                format!(
                    "import sqlalchemy\n\nENGINE = sqlalchemy.create_engine(\"{scheme}://app:{{S}}@db.internal:{port}/billing\")\n"
                ),
            ),
        ] {
            out.push((
                path,
                template,
                password.clone(),
                "connection-string-password",
            ));
        }
    }
    for _ in 0..3 {
        let key = base64(&(0..64).map(|_| r.below(256) as u8).collect::<Vec<_>>());
        out.push((
            "config/storage.json",
            "{\n  \"Storage\": {\n    \"ConnectionString\": \"DefaultEndpointsProtocol=https;AccountName=billingdata;AccountKey={S};EndpointSuffix=core.windows.net\"\n  }\n}\n".to_owned(),
            key,
            "azure-storage-key",
        ));
    }
    for host in ["api.example.com", "git.example.org", "ftp.example.net"] {
        out.push((
            "home/.netrc",
            format!("machine {host}\n  login deploy\n  password {{S}}\n"),
            r.password(),
            "netrc-password",
        ));
        out.push((
            "home/netrc-inline",
            format!("machine {host} login deploy password {{S}}\n"),
            r.password(),
            "netrc-password",
        ));
    }
    for registry in ["registry.example.com", "npm.example.org/repo/npm-virtual"] {
        out.push((
            "web/.npmrc",
            format!(
                "registry=https://{registry}/\n//{registry}/:_authToken={{S}}\nalways-auth=true\n"
            ),
            r.uuid(),
            "npmrc-auth-token",
        ));
        out.push((
            "web/.npmrc",
            format!("//{registry}/:_auth={{S}}\nemail=dev@example.com\n"),
            base64(format!("deploy:{}", r.password()).as_bytes()),
            "npmrc-auth-token",
        ));
    }
    for registry in [
        "registry.example.com",
        "ghcr.example.io",
        "docker.example.net",
    ] {
        out.push((
            "ci/docker/config.json",
            format!("{{\n  \"auths\": {{\n    \"{registry}\": {{\n      \"auth\": \"{{S}}\"\n    }}\n  }}\n}}\n"),
            base64(format!("ci-bot:{}", r.password()).as_bytes()),
            "docker-config-auth",
        ));
    }
    for _ in 0..3 {
        out.push((
            "ops/kubeconfig",
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://k8s.example.com:6443\n  name: prod\nusers:\n- name: admin\n  user:\n    token: {S}\ncontexts:\n- context:\n    cluster: prod\n    user: admin\n  name: prod\n"
                .to_owned(),
            format!("{}.{}", r.chars(&format!("{ALNUM}_-"), 40), r.chars(&format!("{ALNUM}_-"), 300)),
            "kubernetes-token",
        ));
        let key = base64(
            format!(
                "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
                r.chars(BASE64, 64)
            )
            .as_bytes(),
        );
        out.push((
            "ops/admin.kubeconfig",
            "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n    client-key-data: {S}\n".to_owned(),
            key,
            "kubernetes-client-key",
        ));
    }
    for _ in 0..4 {
        let token = r.chars(&format!("{ALNUM}_-."), 48);
        out.push((
            "docs/api.http",
            "### List invoices\nGET https://api.example.com/v1/invoices\nAccept: application/json\nAuthorization: Bearer {S}\n".to_owned(),
            token.clone(),
            "bearer-token",
        ));
        out.push((
            "docs/README.md",
            "## Calling the API\n\n```sh\ncurl -H \"Authorization: Bearer {S}\" https://api.example.com/v1/me\n```\n".to_owned(),
            token,
            "bearer-token",
        ));
        let basic = base64(format!("admin:{}", r.password()).as_bytes());
        out.push((
            "tests/requests.http",
            "POST https://api.example.com/v1/login\nContent-Type: application/json\nAuthorization: Basic {S}\n\n{\"remember\": true}\n".to_owned(),
            basic,
            "basic-auth-header",
        ));
    }
    for _ in 0..3 {
        out.push((
            "infra/database.tf",
            "resource \"aws_db_instance\" \"main\" {\n  engine         = \"postgres\"\n  username       = \"app\"\n  password       = \"{S}\"\n  instance_class = \"db.t3.micro\"\n}\n".to_owned(),
            r.password(),
            "terraform-secret",
        ));
        out.push((
            "infra/terraform.tfvars",
            "region = \"eu-west-1\"\nclient_secret = \"{S}\"\n".to_owned(),
            r.chars(&format!("{ALNUM}~._-"), 40),
            "terraform-secret",
        ));
    }
    for _ in 0..2 {
        let password = r.password();
        out.push((
            "config/jdbc.properties",
            "db.url=jdbc:postgresql://db.internal:5432/billing?user=app&password={S}\n".to_owned(),
            url_encoded(&password),
            "connection-string-password",
        ));
        out.push((
            "config/database.php",
            "<?php\n$db_host = 'db.internal';\n$db_password = '{S}';\n".to_owned(),
            password.clone(),
            "generic-password",
        ));
        out.push((
            "config/initializers/stripe.rb",
            "Stripe.api_key = \"{S}\"\n".to_owned(),
            format!("sk_live_{}", r.alnum(24)),
            "stripe-secret-key",
        ));
        out.push((
            "appsettings.Production.json",
            "{\n  \"Logging\": { \"LogLevel\": { \"Default\": \"Warning\" } },\n  \"ApiKey\": \"{S}\"\n}\n".to_owned(),
            r.alnum(40),
            "generic-api-key",
        ));
        out.push((
            "scripts/fetch.sh",
            "#!/bin/sh\ncurl -fsS -u deploy:{S} https://api.example.com/v1/export > export.json\n"
                .to_owned(),
            password.clone(),
            "curl-user-password",
        ));
        out.push((
            "scripts/backup.sh",
            "#!/bin/sh\nPGPASSWORD='{S}' pg_dump -h db.internal -U app billing > backup.sql\n"
                .to_owned(),
            password,
            "generic-password",
        ));
    }
    for _ in 0..2 {
        out.push((
            "notebooks/train.ipynb",
            "{\n \"cells\": [\n  {\n   \"cell_type\": \"code\",\n   \"source\": [\n    \"from huggingface_hub import login\\n\",\n    \"login(token=\\\"{S}\\\")\"\n   ]\n  }\n ]\n}\n".to_owned(),
            format!("hf_{}", r.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 34)),
            "huggingface-token",
        ));
    }
    out
}

/// A password as it must be written inside a URL.
fn url_encoded(password: &str) -> String {
    let mut out = String::new();
    for c in password.chars() {
        match c {
            '@' | '#' | '&' | '/' | '?' | '%' | ':' | '$' => {
                out.push_str(&format!("%{:02X}", u32::from(c)));
            }
            _ => out.push(c),
        }
    }
    out
}
