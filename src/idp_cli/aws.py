"""``idp aws login`` and ``idp aws credential-process``: AWS credentials for the command line
and the SDKs, from a sign-in at the IdP (a staff command: it talks to the IdP's pages over HTTPS
as a browser does, and to AWS STS, never to DynamoDB or KMS).

The sign-in is typed at the terminal (username, password without echo, the second factor's
code) and drives the same /login and /mfa pages as the browser, so every rule of a browser
sign-in holds. The SAMLResponse is used only if its page posts it to AWS's SAML endpoint: an
assertion meant for another service provider never reaches STS.
"""

from __future__ import annotations

import configparser
import getpass
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from idp_cli import aws_credentials, aws_device, aws_member, aws_signin
from idp_cli.aws_credentials import AssertionUnusable, Credentials, config_file, config_section
from idp_cli.terminal import (
    EXIT_FAILURE,
    Invocation,
    Subcommands,
    UsageError,
    add_noun,
    print_json,
)

DEFAULT_PROFILE = "default"
# Where the profile remembers its IdP, app and role (keys of ~/.aws/config that AWS tools ignore).
SAVED_KEYS = {"url": "idp_url", "app": "idp_app", "role": "idp_role"}
MAX_ANSWER_CHARS = 1024


class StsRefused(Exception):
    """AWS STS refused the assertion (exit 1, as for any operation AWS refuses)."""


def add_parser(commands: Subcommands) -> None:
    actions = add_noun(
        commands, "aws", "AWS credentials for the command line, and the AWS accounts' set-up template"
    )
    login = actions.add_parser("login", help="sign in and write a profile's credentials (~/.aws/credentials)")
    _add_sign_in_options(login)
    login.set_defaults(run=run_login)
    process = actions.add_parser(
        "credential-process", help="sign in and print credentials as a credential_process JSON"
    )
    _add_sign_in_options(process)
    process.set_defaults(run=run_credential_process)
    aws_member.add_member_template(actions)


def _add_sign_in_options(parser: Any) -> None:
    parser.add_argument("--url", metavar="URL", help="the IdP's address (default: the profile's saved one)")
    parser.add_argument("--app", metavar="APP", help="the AWS app to sign in to (default: the profile's)")
    parser.add_argument("--role", metavar="ARN", help="the role to take (default: asked when several)")
    parser.add_argument(
        "--profile", metavar="NAME", default=DEFAULT_PROFILE, help="the AWS profile (default: default)"
    )
    parser.add_argument("--username", metavar="NAME", help="your username (default: asked)")
    parser.add_argument(
        "--browser",
        action="store_true",
        help="sign in in the browser with a one-time code (security keys and passkeys work there)",
    )
    parser.add_argument(
        "--no-browser-open",
        action="store_true",
        help="with --browser: only print the page and the code, do not open the browser",
    )


def run_login(invocation: Invocation) -> int | None:
    args = invocation.args
    result = _sign_in_and_assume(invocation)
    if result is None:
        return EXIT_FAILURE
    credentials, choices = result
    path = aws_credentials.write_credentials(args.profile, credentials)
    aws_credentials.set_keys(config_file(), config_section(args.profile), choices)
    invocation.out.write(
        f"Signed in as {credentials.assumed_role_arn}.\n"
        f"Credentials for the profile {args.profile!r} are in {path} until "
        f"{credentials.expiration:%Y-%m-%d %H:%M:%S %Z}; use them with --profile {args.profile}.\n"
    )
    return None


def run_credential_process(invocation: Invocation) -> int | None:
    """The credentials as a credential_process prints them. The AWS tools run the process for
    every command, so credentials still valid for a while come from a private cache instead of
    a new sign-in each time (as `aws sso login`'s cache does)."""
    args = invocation.args
    cache = aws_credentials.cache_file(_choices(invocation), profile=args.profile)
    cached = aws_credentials.read_cache(cache, invocation.clock)
    if cached is not None:
        print_json(invocation.out, cached)
        return None
    result = _sign_in_and_assume(invocation)
    if result is None:
        return EXIT_FAILURE
    answer = result[0].credential_process()
    aws_credentials.write_cache(cache, answer)
    print_json(invocation.out, answer)
    return None


def _sign_in_and_assume(invocation: Invocation) -> tuple[Credentials, dict[str, str]] | None:
    """Credentials, and the choices to remember for the profile; ``None`` when the IdP refused
    the sign-in or STS the assertion (the reason is on stderr: exit 1). What the CLI itself finds
    wrong (an app that is not AWS's, a role not offered) is exit 2."""
    args = invocation.args
    try:
        aws_credentials.check_profile_name(args.profile)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    url, app, role = _choices(invocation)
    try:
        browser = aws_signin.Browser(url)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    try:
        if args.browser:
            posted = _browser_hand_off(invocation, browser, app)
        else:
            posted = _terminal_sign_in(invocation, browser, app)
    except aws_signin.SignInRefused as exc:
        invocation.err.write(f"idp: the IdP refused the sign-in: {exc}\n")
        return None
    except aws_signin.SignInImpossible as exc:
        raise UsageError(str(exc)) from exc
    try:
        credentials = _assume(invocation, browser, posted, role)
    except AssertionUnusable as exc:
        raise UsageError(str(exc)) from exc
    except StsRefused as exc:
        invocation.err.write(f"idp: {exc}\n")
        return None
    choices = {"idp_url": browser.base_url, "idp_app": app, **({"idp_role": role} if role else {})}
    return credentials, choices


def _terminal_sign_in(invocation: Invocation, browser: aws_signin.Browser, app: str) -> aws_signin.Posted:
    """The sign-in typed at the terminal, as this terminal's device, signed out once done."""
    device = aws_credentials.device_file(browser.origin)
    browser.keep_device_cookies(aws_credentials.read_device_cookies(device))
    posted = aws_signin.sign_in(browser, app, _prompts(invocation))
    aws_credentials.write_device_cookies(device, browser.device_cookies())
    if not aws_signin.sign_out(browser):
        invocation.err.write("idp: note: the IdP did not end the sign-in's session; it ends when idle.\n")
    return posted


def _browser_hand_off(invocation: Invocation, browser: aws_signin.Browser, app: str) -> aws_signin.Posted:
    """The sign-in in the browser, approved there with the code this prints (on standard error:
    a credential_process's standard output is its JSON)."""
    import webbrowser

    if invocation.args.username:
        raise UsageError("With --browser you sign in in the browser: leave out --username.")

    def tell(text: str) -> None:
        invocation.err.write(text)
        invocation.err.flush()

    return aws_device.hand_off(
        browser,
        app,
        tell=tell,
        open_page=None if invocation.args.no_browser_open else webbrowser.open,
        wait=invocation.wait,
    )


def _choices(invocation: Invocation) -> tuple[str, str, str | None]:
    """The IdP's URL, the app and the role: from the options, else the profile's saved ones."""
    args = invocation.args
    if args.stack:
        # Reading the stack's outputs would need an operator's AWS credentials, which staff lack.
        raise UsageError("`idp aws` signs in at the IdP's address: give it with --url, not --stack.")
    saved = _saved(args.profile)
    url = args.url or (_local_url() if args.local else None) or saved.get("url")
    if not url:
        raise UsageError(f"Give the IdP's address with --url (the profile {args.profile!r} has none saved).")
    app = args.app or saved.get("app")
    if not app:
        raise UsageError(f"Name the AWS app with --app (the profile {args.profile!r} has none saved).")
    return url, app, args.role or saved.get("role")


def _local_url() -> str | None:
    """The local stack's address; its embedded AWS (and STS) becomes this process's."""
    from idp_cli.stack import use_local

    return use_local().public_base_url


def _saved(profile: str) -> dict[str, str]:
    parser = configparser.RawConfigParser()
    try:
        parser.read(config_file(), encoding="utf-8")
    except configparser.Error as exc:
        raise UsageError(f"Cannot read {config_file()}: {exc}") from exc
    section = config_section(profile)
    if not parser.has_section(section):
        return {}
    return {
        name: parser.get(section, key) for name, key in SAVED_KEYS.items() if parser.has_option(section, key)
    }


def _assume(
    invocation: Invocation, browser: aws_signin.Browser, posted: aws_signin.Posted, role: str | None
) -> Credentials:
    from botocore.exceptions import ClientError

    if not aws_signin.is_aws_acs(posted.acs_url, browser.base_url):
        raise AssertionUnusable(
            f"The app's assertion is for {posted.acs_url}, not for AWS's SAML sign-in; it was not used. "
            "Choose an AWS app with --app."
        )
    assertion = aws_credentials.read_assertion(posted.saml_response_b64)
    if assertion.recipient != posted.acs_url:
        raise AssertionUnusable(
            f"The assertion names {assertion.recipient!r} as its recipient, not {posted.acs_url}; "
            "it was not used."
        )
    # No expiry check here: STS judges NotOnOrAfter by AWS's clock, not this machine's.
    offer = aws_credentials.choose_role(assertion, role, lambda roles: _ask_role(invocation, roles))
    try:
        return aws_credentials.assume_role(_sts(invocation), offer, posted.saml_response_b64, assertion)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        message = error.get("Message", str(exc))
        raise StsRefused(f"AWS STS refused the role {offer.role_arn}: {message}") from exc


def _sts(invocation: Invocation) -> Any:
    import boto3

    # AssumeRoleWithSAML is not signed: the assertion is the credential, so no AWS profile is needed.
    session = boto3.session.Session()
    region = invocation.args.region or session.region_name or "us-east-1"
    return session.client("sts", region_name=region)


# ---------------------------------------------------------------- the terminal


def _prompts(invocation: Invocation) -> aws_signin.Prompts:
    username = invocation.args.username
    return aws_signin.Prompts(
        username=lambda: username or _ask(invocation, "Username"),
        password=lambda: _ask(invocation, "Password", secret=True),
        code=lambda: _ask(invocation, "Verification code"),
    )


def _ask(invocation: Invocation, prompt: str, *, secret: bool = False, intro: str = "") -> str:
    """One answer: typed at the terminal (a secret without echo), or a line of standard input."""
    if invocation.stdin.isatty():
        if secret:
            answer = getpass.getpass(f"{intro}{prompt}: ", stream=invocation.err)
        else:
            answer = _typed(invocation, f"{intro}{prompt}: ")
    else:
        invocation.err.write(intro)
        answer = invocation.stdin.readline(MAX_ANSWER_CHARS + 1)
    answer = answer.removesuffix("\n").removesuffix("\r")
    if not answer:
        raise UsageError(f"No {prompt.lower()} was given.")
    return answer


def _typed(invocation: Invocation, prompt: str) -> str:
    """A visible answer at the terminal. The prompt goes to the terminal itself, as getpass's
    does: the AWS tools capture a credential_process's standard error, so it would not show."""
    try:
        with Path("/dev/tty").open("r+", encoding="utf-8") as terminal:
            terminal.write(prompt)
            terminal.flush()
            return terminal.readline(MAX_ANSWER_CHARS + 1)
    except OSError:
        invocation.err.write(prompt)
        invocation.err.flush()
        return invocation.stdin.readline(MAX_ANSWER_CHARS + 1)


def _ask_role(invocation: Invocation, roles: Sequence[str]) -> int:
    listing = "".join(f"  {number}. {role}\n" for number, role in enumerate(roles, start=1))
    answer = _ask(invocation, f"Role (1-{len(roles)})", intro=f"The app offers you these roles:\n{listing}")
    if not answer.strip().isdigit() or not 1 <= int(answer) <= len(roles):
        raise UsageError(f"Choose a role by its number, 1 to {len(roles)}; got {answer!r}.")
    return int(answer) - 1
