"""The README's architecture picture ("What runs where"), drawn from the same facts as its text diagram.

Functions stand in columns; each function's line runs down through the services it uses, with
a dot where it uses one, so "who may touch what" reads off the picture as it does off the
functions' IAM roles.
"""

from __future__ import annotations

from dataclasses import dataclass

from docs.diagrams.svg import Box, Drawing

WIDTH, HEIGHT = 1000, 745
COLUMN_WIDTH, COLUMN_STEP, FIRST_COLUMN = 185, 200, 185
LINE_INSET = 14  # where a function's line runs down, from the left edge of its column


@dataclass(frozen=True)
class Function:
    name: str
    duties: tuple[str, ...]
    paths: tuple[str, ...]


FUNCTIONS = (
    Function(
        "sso",
        (
            "sign-in and sessions,",
            "the answer to the challenge,",
            "SAML issuing, metadata,",
            "adaptive decision, alerts",
        ),
        ("/login /me /admin /saml", "/mfa/verify /apps"),
    ),
    Function(
        "otp",
        ("the challenge page,", "sends codes (SMS, e-mail),", "2FA set-up, MFA settings", "and app policies"),
        ("/mfa /me/mfa /admin/mfa",),
    ),
    Function(
        "adaptive",
        ("devices, trusted devices,", "IP rules, adaptive policies"),
        ("/me/devices /admin/devices", "/admin/adaptive"),
    ),
    Function(
        "provisioning",
        ("user stores (LDAP, AD):", "their tests, scheduled", "imports, welcome e-mails"),
        ("/admin/directories",),
    ),
)
TABLES = (
    "users, groups, apps, sessions, settings, audit, factors, tokens, login transactions, rate limits,",
    "devices, directories, directory entries, credentials (on-demand capacity, point-in-time recovery)",
)


def column_x(function: str) -> float:
    index = [each.name for each in FUNCTIONS].index(function)
    return FIRST_COLUMN + index * COLUMN_STEP


def line_x(function: str) -> float:
    return column_x(function) + LINE_INSET


def render() -> str:
    drawing = Drawing(
        WIDTH,
        HEIGHT,
        title="What runs where: the serverless IdP in your AWS account",
        description=(
            "A browser reaches AWS WAF and API Gateway over HTTPS; API Gateway routes each path to one of "
            "four Lambda functions (sso, otp, adaptive, provisioning) that share one layer; an EventBridge "
            "rule starts provisioning's imports. Each function uses only the services marked under it: "
            "DynamoDB, the KMS data key, SES, the KMS signing key (sso only), SNS (otp only) and your LDAP "
            "or Active Directory servers. The browser posts the signed SAMLResponse to the AWS sign-in "
            "endpoint, which opens the AWS console."
        ),
    )
    drawing.frame(Box(170, 10, 815, 560))
    drawing.label(180, 26, "your AWS account")

    browser = drawing.box(Box(20, 32, 130, 62), "person", "Browser", ("staff and admins",))
    waf = drawing.box(
        Box(190, 32, 170, 62), "security", "AWS WAF", ("per-address rate rules,", "managed rule groups")
    )
    gateway = drawing.box(
        Box(385, 32, 360, 62),
        "network",
        "Amazon API Gateway (REST API)",
        ("stage throttling and access logs; which function serves",),
        mono=("each path: idp_core/routing.py",),
    )
    schedule = drawing.box(
        Box(770, 32, 200, 62),
        "integration",
        "Amazon EventBridge",
        ("a rule every 5 minutes:", "scheduled imports"),
    )
    drawing.path([(browser.right, browser.middle_y), (waf.x, waf.middle_y)])
    drawing.text((browser.right + waf.x) / 2, browser.middle_y - 6, "HTTPS", "small", anchor="middle")
    drawing.path([(waf.right, waf.middle_y), (gateway.x, gateway.middle_y)])

    # API Gateway hands each request to the function its path belongs to.
    top, bus = 135.0, 114.0
    entries = {each.name: column_x(each.name) + COLUMN_WIDTH / 2 for each in FUNCTIONS}
    entries["provisioning"] = column_x("provisioning") + 50  # EventBridge enters on the right
    drawing.path([(gateway.center_x, gateway.bottom), (gateway.center_x, bus)], arrow=False)
    drawing.path([(min(entries.values()), bus), (max(entries.values()), bus)], arrow=False)
    for x in entries.values():
        drawing.path([(x, bus), (x, top)])
    drawing.path([(schedule.center_x + 45, schedule.bottom), (schedule.center_x + 45, top)])

    drawing.frame(Box(177, 125, 801, 152))
    boxes = {
        each.name: drawing.box(
            Box(column_x(each.name), top, COLUMN_WIDTH, 120),
            "compute",
            f'Lambda "{each.name}"',
            each.duties,
            mono=each.paths,
        )
        for each in FUNCTIONS
    }

    # Each function's line runs down to the last service it uses; bars are drawn over it.
    rows = {
        "dynamodb": Box(185, 292, 785, 64),
        "data key": Box(185, 368, 785, 50),
        "ses": Box(185, 430, 785, 50),
        "signing key": Box(line_x("sso") + 18, 492, 168, 64),
        "sns": Box(line_x("otp") + 18, 492, 168, 64),
        "directories": Box(185, 592, 785, 50),
    }
    uses = {
        "sso": ("dynamodb", "data key", "ses", "signing key", "directories"),
        "otp": ("dynamodb", "data key", "ses", "sns"),
        "adaptive": ("dynamodb",),
        "provisioning": ("dynamodb", "data key", "ses", "directories"),
    }
    side_boxes = {"signing key", "sns"}
    for function, used in uses.items():
        x = line_x(function)
        last = rows[used[-1]]
        end = last.middle_y if used[-1] in side_boxes else last.y
        drawing.path([(x, boxes[function].bottom), (x, end)], arrow=False, css_class="tap")

    drawing.label(
        187,
        269,
        "arm64, Python 3.13; one Lambda layer shared by all four: the core package idp_core and wheels",
    )
    drawing.box(rows["dynamodb"], "database", "Amazon DynamoDB: one table per concern", TABLES)
    drawing.box(
        rows["data key"],
        "security",
        "AWS KMS data key (symmetric)",
        (
            "Encrypt and Decrypt only under the encryption context {user, factor} (sso, otp) "
            "or {directory} (sso, provisioning)",
        ),
    )
    drawing.box(
        rows["ses"],
        "integration",
        "Amazon SES (e-mail)",
        (
            "codes and security notices (otp), adaptive alerts (sso), welcome e-mails (provisioning); "
            "from one sender only",
        ),
    )
    drawing.box(
        rows["signing key"],
        "security",
        "AWS KMS signing key",
        ("RSA 2048, kms:Sign by", "sso only; never leaves KMS"),
    )
    drawing.box(
        rows["sns"], "integration", "Amazon SNS (SMS)", ("text message codes (otp)", "to mobile numbers only")
    )
    drawing.box(
        rows["directories"],
        "external",
        "Your LDAP / Active Directory servers (your network, optionally through your VPC)",
        ("LDAPS or StartTLS: binds at sign-in and password changes (sso), tests and imports (provisioning)",),
    )
    for function, used in uses.items():
        x = line_x(function)
        for row in used:
            if row in side_boxes:
                drawing.dot(x, rows[row].middle_y)
                drawing.path([(x, rows[row].middle_y), (rows[row].x, rows[row].middle_y)], css_class="tap")
            else:
                drawing.dot(x, rows[row].y)

    legend_x = line_x("adaptive") + 4
    drawing.dot(legend_x + 4, 508)
    for number, line in enumerate(
        ("the function above uses the", "service; one IAM role per", "function allows only its uses")
    ):
        drawing.text(legend_x + 14, 512 + 14 * number, line, "small")

    # The end of a sign-in: the browser carries the signed SAMLResponse to AWS.
    drawing.text(
        20,
        672,
        "After the second factor, sso answers with a signed SAMLResponse that the browser posts to AWS:",
        "caption",
    )
    poster = drawing.box(Box(20, 684, 200, 50), "person", "Browser", ("auto-posts the SAMLResponse",))
    sign_in = drawing.box(
        Box(300, 684, 330, 50), "external", "AWS sign-in", mono=("https://signin.aws.amazon.com/saml",)
    )
    console = drawing.box(
        Box(710, 684, 260, 50), "external", "AWS console", ("a session of the group's IAM role",)
    )
    drawing.path([(poster.right, poster.middle_y), (sign_in.x, sign_in.middle_y)])
    drawing.path([(sign_in.right, sign_in.middle_y), (console.x, console.middle_y)])
    return drawing.to_svg()
