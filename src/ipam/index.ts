// podwire's host-local compatible IPAM.
export { ipamAdd, ipamDel, ipamCheck, ipamGc, ipamStatus, ipamReservations, parseIpamConfig, type IpamConfig } from './ipam.js';
