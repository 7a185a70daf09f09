/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every limit libcertd applies to outside input, with the reason for its value (STYLE.md §5).
 * Front ends may lower a configurable limit; none may raise a hard one.
 */
#pragma once

/*
 * Default cap on an uploaded PEM/DER bundle. A server certificate, its key and a few
 * intermediates are 5-15 KiB; 64 KiB leaves room for long chains while bounding parse work.
 * Configurable per call.
 */
#define CERTD_INPUT_MAX_DEFAULT (64u * 1024u)
/* Hard ceiling for the configurable cap: nobody needs a 1 MiB certificate bundle. */
#define CERTD_INPUT_MAX_HARD (1024u * 1024u)
/* Certificates in one bundle (leaf + chain, or a CA bundle). */
#define CERTD_BUNDLE_CERTS_MAX 32u
/* Chain depth checked for order: leaf plus intermediates, as in X509_VERIFY_PARAM depth. */
#define CERTD_CHAIN_DEPTH_MAX 10u
/* Default number of CA certificates an authority endpoint keeps (the reference uses 10). */
#define CERTD_AUTHORITY_MAX_DEFAULT 10u
/* Hard ceiling for the configurable authority limit. */
#define CERTD_AUTHORITY_MAX_HARD 1000u
/* Subject alternative names we report, and accept in a CSR request. */
#define CERTD_SANS_MAX 64u
/* Key-usage entries accepted in one CSR request (Redfish KeyUsage array). */
#define CERTD_KEY_USAGES_MAX 32u
/* Extended key usages reported for one certificate. */
#define CERTD_EKUS_MAX 32u
/* Length of one SAN string in a request (DNS names are <= 253; URIs get the same bound). */
#define CERTD_SAN_LEN_MAX 255u
/* Longest rendered distinguished name we produce (RFC 4514 string), truncation is an error. */
#define CERTD_DN_STR_MAX 2048u

/* X.520 / RFC 5280 Appendix A upper bounds for name attributes, in characters. */
#define X520_CN_MAX            64u  /* ub-common-name */
#define X520_LOCALITY_MAX      128u /* ub-locality-name */
#define X520_STATE_MAX         128u /* ub-state-name */
#define X520_ORGANIZATION_MAX  64u  /* ub-organization-name */
#define X520_OU_MAX            64u  /* ub-organizational-unit-name */
#define X520_COUNTRY_LEN       2u   /* ub-country-name-alpha-length: ISO 3166 alpha-2 */
#define X520_SERIAL_NUMBER_MAX 64u  /* ub-serial-number */
#define X520_TITLE_MAX         64u  /* ub-title */
#define X520_PSEUDONYM_MAX     128u /* ub-pseudonym */
#define X520_EMAIL_MAX         255u /* PKCS #9 emailAddress (RFC 5280 ub-emailaddress-length) */

/*
 * givenName, surname and initials are X520name in RFC 5280 Appendix A, bounded only by
 * ub-name = 32768: no use as a limit. (The 16/40/5 often quoted for them are X.411's bounds for
 * the personal name of an O/R address, a different structure.) These are certd's own caps,
 * generous for real names and small enough to keep subjects readable.
 */
#define CERTD_GIVEN_NAME_MAX 64u
#define CERTD_SURNAME_MAX    64u
#define CERTD_INITIALS_MAX   16u

#define PKCS9_UNSTRUCTURED_NAME_MAX  255u /* PKCS #9 pkcs-9-ub-unstructuredName */
#define PKCS9_CHALLENGE_PASSWORD_MAX 255u /* PKCS #9 pkcs-9-ub-challengePassword */
#define CERTD_CONTACT_PERSON_MAX     128u /* no standard bound; Redfish gives none, we cap it */

/* Validity accepted when issuing: 1 day to 100 years. */
#define CERTD_VALIDITY_DAYS_MAX 36500u
