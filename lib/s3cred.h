/*
 * s3cred.h — S3 credentials, found the way the AWS tools find them.
 *
 * In order: the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
 * with AWS_SESSION_TOKEN for temporary credentials); then the profile
 * AWS_PROFILE names ("default" when unset) in the shared credentials file,
 * AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials; then that profile in
 * the config file, AWS_CONFIG_FILE or ~/.aws/config, where it is written
 * [profile NAME] (the AWS CLI reads keys from both files).
 *
 * A secret never leaves this structure except towards the request signer:
 * no function here prints, logs or stores one, messages about a file name
 * its line number and never its text, and s3cred_free() wipes the memory.
 */
#ifndef S3CRED_H
#define S3CRED_H

struct s3_cred {
	char *access_key;	/* the key id; not a secret, may be shown */
	char *secret_key;
	char *session_token;	/* NULL unless temporary credentials */
	char *source;		/* where they came from, for messages:
				   "the environment", "profile 'x' in FILE" */
};

/*
 * Finds the credentials as described above and sets *out. Returns 0, or -1
 * after one message naming what is missing or malformed (a profile asked
 * for by AWS_PROFILE that no file holds, a file that cannot be read, a
 * profile with a key id and no secret, no credentials at all).
 */
int s3cred_load(struct s3_cred **out);

/*
 * Reads profile from the text of one credentials or config file; path is
 * only for messages. In a config file (config set) the section of a profile
 * other than "default" is "[profile NAME]". Returns 0 and sets *out, or
 * ERR_NOTFOUND (printing nothing) when the file has no such profile or the
 * profile no key, or -1 after a message for a malformed file.
 */
int s3cred_parse(struct s3_cred **out, const char *text, const char *path,
		 const char *profile, int config);

/* Wipes and frees; accepts NULL. */
void s3cred_free(struct s3_cred *c);

#endif
