import { prepareHostImages } from "./testbed";

/** Builds the hosts' rootfs and apt repository, if not cached, once and before any test's timeout starts. */
export default async function setup(): Promise<void> {
    await prepareHostImages();
}
